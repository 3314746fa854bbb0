//! Hostile: declares only `net.http` (requests the host makes for it) but opens a TCP socket
//! itself with `socket` and `connect` to `127.0.0.1:<port>` (the port is the story's text).
//! Static inspection must find the network imports beyond the grants (`IMPORT_NETWORK`, an
//! error) and `validate` must deny it; if it ever runs, seccomp refuses the socket.
use hostile_common::{Attempt, errno_text};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-imports-net",
    description: "Declares host-made HTTP requests only, but opens its own TCP sockets",
    author: "plugin-host examples",
    level: standard,
    permissions: ["net.http:api.example.org"],
    limits: { wall_ms: 1000 },
}

/// Connects to `127.0.0.1:<port>` with raw socket calls.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let Ok(port) = story.text.trim().parse::<u16>() else {
        return Attempt::stopped("input text must be a port number");
    };
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Attempt::stopped(format!("socket: {}", errno_text()));
    }
    let address = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `address` is a valid sockaddr_in and the length passed is its size.
    let rc = unsafe {
        libc::connect(
            fd,
            (&raw const address).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let result = if rc == 0 {
        Attempt::escaped(format!("connected to 127.0.0.1:{port}"))
    } else {
        Attempt::stopped(format!("connect: {}", errno_text()))
    };
    // SAFETY: `fd` is the socket opened above, closed once.
    unsafe { libc::close(fd) };
    result
}
