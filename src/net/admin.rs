//! The admin socket: a Unix socket in the data directory through which
//! `perch user …`, `room …`, `archive …` and `backup` reach a running
//! server (redb allows one writer, and the server is it). Access is by
//! file permission: owner only.

use std::cell::RefCell;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use async_net::unix::{UnixListener, UnixStream};
use futures_lite::AsyncWriteExt;

use crate::admin::{self, AdminError, Command};
use crate::server::Server;

pub const SOCKET_NAME: &str = "admin.sock";
/// Room for the longest text `perch announce` and `perch motd set` send,
/// escaped.
const MAX_REQUEST: usize = 16 * 1024;

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
    let receive = receive_request(&stream);
    let (request, file) = futures_lite::future::or(receive, async {
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
        Ok(Command::Backup) => match file {
            Some(file) => backup(server, file).await,
            None => Err(AdminError::Protocol(
                "a backup request must carry the target file".to_string(),
            )),
        },
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

/// Reads one request (up to the empty line) and the file descriptor sent
/// along with it, if any.
async fn receive_request(stream: &UnixStream) -> std::io::Result<(Vec<u8>, Option<File>)> {
    let socket: Arc<smol::Async<std::os::unix::net::UnixStream>> = stream.clone().into();
    let mut request = Vec::new();
    let mut file = None;
    while !request.ends_with(b"\n\n") && request.len() < MAX_REQUEST {
        let (n, fd) = socket.read_with(receive_with_fd).await?;
        if file.is_none() {
            file = fd.map(File::from);
        }
        if n.is_empty() {
            break;
        }
        request.extend_from_slice(&n);
    }
    Ok((request, file))
}

/// One `recvmsg`: the bytes and at most one passed descriptor (extra ones
/// are closed on drop).
fn receive_with_fd(
    socket: &std::os::unix::net::UnixStream,
) -> std::io::Result<(Vec<u8>, Option<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 512];
    let received = recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut buf)],
        &mut ancillary,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for passed in fds {
                fd.get_or_insert(passed);
            }
        }
    }
    let bytes = buf.get(..received.bytes).unwrap_or_default().to_vec();
    Ok((bytes, fd))
}

async fn backup(server: &Server, file: File) -> Result<Vec<String>, AdminError> {
    log::info!("admin: backup started");
    let summary = server.store().backup_into(file).await?;
    let line = format!(
        "backed up {} records in {} tables",
        summary.records, summary.tables
    );
    log::info!("admin: {line}");
    Ok(vec![line])
}

async fn run(server: &Server, cmd: &Command) -> Result<Vec<String>, AdminError> {
    let lines = match cmd {
        // With the server running, rooms are its business: occupied rooms
        // live in its memory, and occupants must be told.
        Command::RoomList => {
            let lines: Vec<String> = server
                .muc()
                .summaries(&server.env())?
                .iter()
                .map(|r| admin::room_line(r, Some(r.occupants)))
                .collect();
            if lines.is_empty() {
                vec![admin::NO_ROOMS.to_string()]
            } else {
                lines
            }
        }
        Command::RoomDestroy { jid, reason } => {
            let room = admin::room_jid(jid)?;
            if let Some(r) = reason {
                admin::check_reason(r)?;
            }
            // A section, like a client's stanza: the occupants are told
            // once the removal is on disk.
            let outcome = Rc::new(RefCell::new(Ok(())));
            let slot = outcome.clone();
            let target = room.to_string();
            let reason = reason.clone();
            let rooms = server.muc().clone();
            let work = move |env: &crate::env::Env| {
                *slot.borrow_mut() = rooms.destroy(env, &target, reason.as_deref());
            };
            crate::durable::run(server, Box::new(work))
                .await
                .map_err(|e| AdminError::Remote(e.reason))?;
            outcome
                .replace(Ok(()))
                .map_err(|e| AdminError::Remote(e.to_string()))?;
            server.muc().flush(&server.env()).await;
            vec![format!("destroyed {room}")]
        }
        _ => admin::execute(server, cmd).await?,
    };
    if let Some(line) = admin::log_line(cmd, &lines) {
        log::info!("admin: {line}");
    }
    Ok(lines)
}

/// Client side, used by the CLI. `Ok(None)` means no server is listening.
pub fn request(data_dir: &Path, cmd: &Command) -> Result<Option<Vec<String>>, AdminError> {
    request_with_file(data_dir, cmd, None)
}

/// Like [`request`], passing `file` to the server along with the request
/// (for [`Command::Backup`]).
pub fn request_with_file(
    data_dir: &Path,
    cmd: &Command,
    file: Option<&File>,
) -> Result<Option<Vec<String>>, AdminError> {
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
    // A backup of a large database on an SD card takes a while, and so
    // may an expiry that reads or removes years of messages.
    let timeout = match cmd {
        Command::Backup | Command::ArchiveExpire { .. } => std::time::Duration::from_secs(3600),
        _ => std::time::Duration::from_secs(30),
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    let request = admin::encode_request(cmd);
    let sent = send_with_fd(&stream, request.as_bytes(), file).map_err(io_err)?;
    stream
        .write_all(request.as_bytes().get(sent..).unwrap_or_default())
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

/// One `sendmsg` carrying `bytes` and, if given, `file`'s descriptor;
/// returns how many bytes went out.
fn send_with_fd(
    socket: &std::os::unix::net::UnixStream,
    bytes: &[u8],
    file: Option<&File>,
) -> std::io::Result<usize> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(file) = file {
        fds = [file.as_fd()];
        ancillary.push(SendAncillaryMessage::ScmRights(&fds));
    }
    Ok(sendmsg(
        socket,
        &[IoSlice::new(bytes)],
        &mut ancillary,
        SendFlags::empty(),
    )?)
}
