//! The sock_diag netlink exchange shared by the socket observers: one request (a dump, or one socket), every
//! answer handed over as it is read. Asking the kernel this way costs what the answer holds, where reading
//! `/proc/net/*` costs every socket of the system.

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

/// A sock_diag socket, in sockdiag's own network namespace.
pub(crate) fn connect() -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// True when sock_diag's answers are about `pid`'s sockets: it answers for sockdiag's own network namespace, and
/// `pid` shares it (or is gone, and ours is the one to ask).
pub(crate) fn sees(pid: i32) -> bool {
    let ns = |who: &str| std::fs::read_link(format!("/proc/{who}/ns/net")).ok();
    ns(&pid.to_string()).is_none_or(|theirs| Some(theirs) == ns("self"))
}

/// Sends `request` (a dump when `dump`) and hands each answer to `each`. The kernel answers at once, in as many
/// datagrams as it needs; a dump ends with Done, a request about one socket with its answer or an error (ENOENT
/// when the kernel knows no such socket).
pub(crate) fn ask(
    socket: &Socket,
    dump: bool,
    request: SockDiagMessage,
    mut each: impl FnMut(SockDiagMessage),
) -> std::io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut recv = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut recv[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&recv[offset..size])
                .map_err(|e| std::io::Error::other(format!("sock_diag: {e}")))?;
            match msg.payload {
                NetlinkPayload::InnerMessage(answer) => {
                    each(answer);
                    if !dump {
                        return Ok(());
                    }
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(match e.code {
                        Some(code) => std::io::Error::from_raw_os_error(-code.get()),
                        None => std::io::Error::other(format!("sock_diag: {e:?}")),
                    })
                }
                _ => {}
            }
            if msg.header.length == 0 {
                break;
            }
            offset += msg.header.length as usize;
        }
    }
}
