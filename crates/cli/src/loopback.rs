//! The loopback end of a browser sign-in: listen on `127.0.0.1`, take the one request the
//! identity platform redirects the browser to, answer it, and hand back its path and query
//! (`/?code=…&state=…`). Other requests (a favicon) get a 404 and are ignored.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use anyhow::{bail, Context};

/// Waits for the redirect; returns its request target (path and query).
pub fn redirect(listener: &TcpListener) -> anyhow::Result<String> {
    for stream in listener.incoming() {
        let mut stream = stream.context("accepting the sign-in redirect")?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        // Drain the headers so the browser sees a clean response.
        let mut line = String::new();
        while reader.read_line(&mut line)? > 2 {
            line.clear();
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let is_redirect = target.contains("code=") || target.contains("error=");
        let (status, body) = if is_redirect {
            (
                "200 OK",
                "Strongroom: signed in. You can close this window.",
            )
        } else {
            ("404 Not Found", "")
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        if is_redirect {
            return Ok(target);
        }
    }
    bail!("the sign-in listener closed")
}
