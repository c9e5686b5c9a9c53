//! The admin socket: a Unix socket in the data directory through which
//! `perch user …` reaches a running server (redb allows one writer, and the
//! server is it). Access is by file permission: owner only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use async_net::unix::{UnixListener, UnixStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::admin::{self, AdminError, Command};
use crate::server::Server;

pub const SOCKET_NAME: &str = "admin.sock";
const MAX_REQUEST: usize = 4096;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Binds the socket. A leftover from a crashed server is removed first: the
/// database lock we already hold proves no other server owns it.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(listener: UnixListener, server: Rc<Server>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Requests are rare and short: handle them in turn.
                if let Err(e) = handle(stream, &server).await {
                    log::warn!("admin socket: {e}");
                }
            }
            Err(e) => {
                log::warn!("admin socket accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: UnixStream, server: &Server) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 512];
    let read = async {
        while !request.ends_with(b"\n\n") && request.len() < MAX_REQUEST {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Ok::<(), std::io::Error>(())
    };
    futures_lite::future::or(read, async {
        smol::Timer::after(std::time::Duration::from_secs(10)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request timed out",
        ))
    })
    .await?;
    let reply = match String::from_utf8(request)
        .map_err(|_| AdminError::Protocol("request is not UTF-8".to_string()))
        .and_then(|text| admin::decode_request(&text))
    {
        Ok(cmd) => run(server, &cmd).await,
        Err(e) => Err(e),
    };
    let text = match reply {
        Ok(lines) => {
            let mut t = String::from("ok\n");
            for l in lines {
                t.push_str(&l);
                t.push('\n');
            }
            t
        }
        Err(e) if e.is_invalid_request() => format!("invalid: {e}\n"),
        Err(e) => format!("error: {e}\n"),
    };
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

async fn run(server: &Server, cmd: &Command) -> Result<Vec<String>, AdminError> {
    let lines = match cmd {
        // With the server running, rooms are its business: occupied rooms
        // live in its memory, and occupants must be told.
        Command::RoomList => server
            .muc
            .summaries(server)?
            .iter()
            .map(|r| admin::room_line(r, Some(r.occupants)))
            .collect(),
        Command::RoomDestroy { jid, reason } => {
            let room = admin::room_jid(jid)?;
            if let Some(r) = reason {
                admin::check_reason(r)?;
            }
            server
                .muc
                .destroy(server, room.as_str(), reason.as_deref())
                .map_err(|e| AdminError::Remote(e.to_string()))?;
            server.muc.flush().await;
            vec![format!("destroyed {room}")]
        }
        _ => admin::execute(server, cmd).await?,
    };
    if !matches!(cmd, Command::UserList { .. }) {
        log::info!("admin: {}", lines.join("; "));
    }
    Ok(lines)
}

/// Client side, used by the CLI. `Ok(None)` means no server is listening.
pub fn request(data_dir: &Path, cmd: &Command) -> Result<Option<Vec<String>>, AdminError> {
    use std::io::{Read, Write};
    let path = socket_path(data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(AdminError::Protocol(format!(
                "cannot connect to {}: {e}",
                path.display()
            )));
        }
    };
    let io_err = |e: std::io::Error| AdminError::Protocol(e.to_string());
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(io_err)?;
    stream
        .write_all(admin::encode_request(cmd).as_bytes())
        .map_err(io_err)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(io_err)?;
    let mut lines = answer.lines();
    match lines.next() {
        Some("ok") => Ok(Some(lines.map(str::to_string).collect())),
        Some(err) if err.starts_with("invalid: ") => Err(AdminError::RemoteInvalid(
            err.trim_start_matches("invalid: ").to_string(),
        )),
        Some(err) => Err(AdminError::Remote(
            err.strip_prefix("error: ").unwrap_or(err).to_string(),
        )),
        None => Err(AdminError::Protocol(
            "the server closed the connection".to_string(),
        )),
    }
}
