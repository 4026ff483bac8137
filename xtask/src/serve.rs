//! A small static file server for `pkg/`: GET and HEAD, correct MIME types (module scripts
//! and streaming wasm compilation need them), Content-Length (the page's download progress
//! uses it), and the cross-origin isolation headers that wasm threads will need.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use crate::util::{root, Result};

pub fn run(args: &[String]) -> Result {
    let port = match args {
        [] => 8080,
        [flag, port] if flag == "--port" => port.parse().map_err(|_| format!("bad port: {port}"))?,
        _ => return Err("usage: cargo xtask serve [--port N]".into()),
    };
    crate::build::tools_and_site()?;
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    println!("Graft is served at http://127.0.0.1:{port}/  (Ctrl-C stops it)");
    serve_forever(listener, root().join("pkg"));
    Ok(())
}

/// Serves `dir` on a free loopback port in a background thread; returns the port.
pub fn spawn(dir: PathBuf) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || serve_forever(listener, dir));
    Ok(port)
}

fn serve_forever(listener: TcpListener, dir: PathBuf) {
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &dir);
        });
    }
}

fn handle(mut stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers; nothing in them changes the answer.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"method not allowed", true);
    }
    let Some(path) = resolve(dir, target) else {
        return respond(&mut stream, "404 Not Found", "text/plain", b"not found", true);
    };
    match std::fs::read(&path) {
        Ok(body) => respond(&mut stream, "200 OK", mime_type(&path), &body, method == "GET"),
        Err(_) => respond(&mut stream, "404 Not Found", "text/plain", b"not found", true),
    }
}

/// Maps a request target to a file under `dir`, refusing anything that climbs out of it.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let path = path.replace("%20", " ");
    let relative = Path::new(path.trim_start_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = dir.join(relative);
    let full = if full.is_dir() { full.join("index.html") } else { full };
    full.is_file().then_some(full)
}

fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn respond(stream: &mut TcpStream, status: &str, mime: &str, body: &[u8], with_body: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_paths_outside_the_folder() {
        let dir = root().join("web");
        assert!(resolve(&dir, "/../Cargo.toml").is_none());
        assert!(resolve(&dir, "/%2e%2e/Cargo.toml").is_none());
        assert_eq!(resolve(&dir, "/"), Some(dir.join("index.html")));
        assert_eq!(resolve(&dir, "/styles.css?v=1"), Some(dir.join("styles.css")));
        assert!(resolve(&dir, "/missing.js").is_none());
    }
}
