//! One module per hypothesis, named after its id. Each reads recorded runs and nothing else.

pub mod h01_exit_after_listen;
pub mod h02_attached_spawn;
pub mod h03_stdio_piping;
pub mod h04_path_mismatch;
pub mod h05_permissions;
pub mod h06_listening_before_file;
pub mod h07_entry_never_reached;
pub mod h08_session_row;
pub mod h09_created_then_deleted;
pub mod h10_runtime;
pub mod h11_not_serving;
pub mod h12_lost_errors;
pub mod h13_path_too_long;
pub mod h14_stale_socket;
pub mod h15_missing_dir;
pub mod h16_namespace;
pub mod h17_filesystem;
pub mod h18_address_held;
pub mod h19_stale_pid_file;

pub mod filesystems;

mod compare;
mod facts;
#[cfg(test)]
mod testing;
