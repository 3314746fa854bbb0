//! Hostile: opens a TCP connection to `127.0.0.1:<port>` (the port comes in the story's text as
//! `{"port": N}`) without holding `net.connect`, and writes `escaped` to it. The seccomp filter
//! or Landlock's network rules must refuse the connection.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};
use serde::Deserialize;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

plugin! {
    name: "hostile-net",
    description: "Tries to open a TCP connection it holds no permission for",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// The story text this plugin expects.
#[derive(Debug, Deserialize)]
struct Target {
    port: u16,
}

/// Connects to the local port named in the text and writes `escaped\n` to it.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let target: Target = match serde_json::from_str(&story.text) {
        Ok(target) => target,
        Err(error) => {
            return Attempt::stopped(format!("input text must be {{\"port\": N}}: {error}"));
        }
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, target.port));
    match TcpStream::connect_timeout(&address, Duration::from_millis(500)) {
        Ok(mut stream) => {
            let written = match stream.write_all(b"escaped\n") {
                Ok(()) => "wrote \"escaped\"".to_string(),
                Err(error) => format!("the write failed: {error}"),
            };
            Attempt::escaped(format!("connected to {address}; {written}"))
        }
        Err(error) => Attempt::stopped(format!("connecting to {address} failed: {error}")),
    }
}
