//! What a launcher tells the harness on its stdout: the workers it started, their output, their exits, each with
//! the CLOCK_MONOTONIC time (ns) it happened at. Text headers, raw payloads: a header line `<ns> <what> ...`, then
//! for output exactly `len` bytes.

use std::io::{self, BufRead, Write};

use sockdiag_probes::{ExitStatus, Stream};

/// One message from the launcher. `slot` numbers the launches (0, 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    Spawned { slot: usize, pid: i32 },
    Output { slot: usize, stream: Stream, bytes: Vec<u8> },
    Exited { slot: usize, pid: i32, status: ExitStatus },
    Failed { text: String },
}

pub(crate) fn write(w: &mut impl Write, at_ns: u64, report: &Report) -> io::Result<()> {
    write!(w, "{at_ns} ")?;
    match report {
        Report::Spawned { slot, pid } => writeln!(w, "spawned {slot} {pid}"),
        Report::Output { slot, stream, bytes } => {
            let name = match stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            writeln!(w, "output {slot} {name} {}", bytes.len())?;
            w.write_all(bytes)
        }
        Report::Exited { slot, pid, status } => match status {
            ExitStatus::Code(c) => writeln!(w, "exited {slot} {pid} code {c}"),
            ExitStatus::Signal(s) => writeln!(w, "exited {slot} {pid} signal {s}"),
        },
        Report::Failed { text } => writeln!(w, "failed {}", text.replace('\n', " ")),
    }?;
    w.flush()
}

/// Reads the next report and when it happened; `None` at end of stream (or on a frame cut short by the launcher's
/// exit).
pub(crate) fn read(r: &mut impl BufRead) -> io::Result<Option<(u64, Report)>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 || !line.ends_with('\n') {
        return Ok(None);
    }
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad launcher report: {line:?}"));
    let (at, header) = line.split_once(' ').ok_or_else(bad)?;
    let at: u64 = at.parse().map_err(|_| bad())?;
    let words: Vec<&str> = header.trim_end().splitn(5, ' ').collect();
    let num = |i: usize| words.get(i).and_then(|w| w.parse::<i64>().ok()).ok_or_else(bad);
    let report = match words[0] {
        "spawned" => Report::Spawned { slot: num(1)? as usize, pid: num(2)? as i32 },
        "output" => {
            let stream = match words.get(2) {
                Some(&"out") => Stream::Stdout,
                Some(&"err") => Stream::Stderr,
                _ => return Err(bad()),
            };
            let mut bytes = vec![0; num(3)? as usize];
            if r.read_exact(&mut bytes).is_err() {
                return Ok(None);
            }
            Report::Output { slot: num(1)? as usize, stream, bytes }
        }
        "exited" => {
            let status = match words.get(3) {
                Some(&"code") => ExitStatus::Code(num(4)? as i32),
                Some(&"signal") => ExitStatus::Signal(num(4)? as i32),
                _ => return Err(bad()),
            };
            Report::Exited { slot: num(1)? as usize, pid: num(2)? as i32, status }
        }
        "failed" => Report::Failed { text: header.trim_end().trim_start_matches("failed ").to_string() },
        _ => return Err(bad()),
    };
    Ok(Some((at, report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_a_cut_frame_ends_the_stream() {
        let reports = vec![
            Report::Spawned { slot: 0, pid: 42 },
            Report::Output { slot: 1, stream: Stream::Stderr, bytes: b"a line\nhalf".to_vec() },
            Report::Exited { slot: 0, pid: 42, status: ExitStatus::Signal(13) },
            Report::Exited { slot: 1, pid: 43, status: ExitStatus::Code(1) },
            Report::Failed { text: "cannot start /x: No such file".into() },
        ];
        let mut buf = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            write(&mut buf, 1000 + i as u64, r).unwrap();
        }
        buf.extend_from_slice(b"2000 output 0 out 100\nonly a few bytes");
        let mut reader = io::BufReader::new(buf.as_slice());
        let mut got = Vec::new();
        while let Some(r) = read(&mut reader).unwrap() {
            got.push(r);
        }
        let want: Vec<(u64, Report)> = reports.into_iter().enumerate().map(|(i, r)| (1000 + i as u64, r)).collect();
        assert_eq!(got, want);
    }
}
