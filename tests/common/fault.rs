//! A fault-injecting TCP proxy between the gateway and slapd.
//!
//! It reads just enough BER to split the byte streams into LDAP messages (RFC 4511 §4.1.1:
//! `SEQUENCE { messageID INTEGER, protocolOp [APPLICATION n] … }`) and counts the requests
//! that get an answer, over every connection, from the moment it is armed. At the k-th it
//! injects one fault, then passes everything through again:
//!
//! - [`Fault::Stall`]: the request reaches slapd (so it takes effect) but its answer is
//!   withheld, as a network that drops it would: the gateway's operation times out.
//! - [`Fault::Reset`]: the request never reaches slapd and the connection is reset.
//! - [`Fault::Refuse`]: the request never reaches slapd; the proxy answers in slapd's place with
//!   the response of that operation carrying `unwillingToPerform` (53), as a directory
//!   refusing that operation (a policy, a constraint) would.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Stall,
    Reset,
    Refuse,
}

pub const FAULTS: [Fault; 3] = [Fault::Stall, Fault::Reset, Fault::Refuse];

#[derive(Default)]
struct State {
    /// Requests seen since the last [`FaultProxy::arm`] / [`FaultProxy::count_from_now`].
    seen: usize,
    armed: Option<(usize, Fault)>,
    /// Operation names of the requests seen, in order (for the report of a failing cell).
    ops: Vec<&'static str>,
}

pub struct FaultProxy {
    /// `ldap://127.0.0.1:PORT`, for the gateway's `[directory] url`.
    pub url: String,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream_url: &str) -> FaultProxy {
        let upstream = upstream_url.trim_start_matches("ldap://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let url = format!("ldap://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let accept = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (state, upstream) = (state.clone(), upstream.clone());
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(&upstream).await {
                            relay(client, server, state).await;
                        }
                    });
                }
            }
        });
        FaultProxy { url, state, accept }
    }

    /// Injects `fault` at the `k`-th request from now (1-based).
    pub fn arm(&self, k: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        *s = State { armed: Some((k, fault)), ..State::default() };
    }

    /// Starts counting requests from zero, with no fault.
    pub fn count_from_now(&self) {
        *self.state.lock().unwrap() = State::default();
    }

    /// Requests seen since the last arm / count, and whether the armed fault has fired.
    pub fn seen(&self) -> (usize, bool) {
        let s = self.state.lock().unwrap();
        (s.seen, s.armed.is_none_or(|(k, _)| s.seen >= k))
    }

    pub fn ops(&self) -> Vec<&'static str> {
        self.state.lock().unwrap().ops.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One LDAP message: its bytes, messageID and protocolOp tag.
struct Message {
    bytes: Vec<u8>,
    id: i64,
    op: u8,
}

/// Reads one BER-framed LDAP message; None at the end of the stream or on garbage.
async fn read_message(r: &mut OwnedReadHalf) -> Option<Message> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await.ok()?;
    if head[0] != 0x30 {
        return None;
    }
    let mut bytes = head.to_vec();
    let len = match head[1] {
        n if n < 0x80 => n as usize,
        n => {
            let mut len_bytes = vec![0u8; (n & 0x7f) as usize];
            if len_bytes.is_empty() || len_bytes.len() > 4 {
                return None;
            }
            r.read_exact(&mut len_bytes).await.ok()?;
            bytes.extend_from_slice(&len_bytes);
            len_bytes.iter().fold(0usize, |acc, b| acc << 8 | *b as usize)
        }
    };
    let start = bytes.len();
    bytes.resize(start + len, 0);
    r.read_exact(&mut bytes[start..]).await.ok()?;
    // messageID: INTEGER (tag 2, short length), then the protocolOp's tag.
    let body = &bytes[start..];
    if body.len() < 3 || body[0] != 0x02 {
        return None;
    }
    let id_len = body[1] as usize;
    let id = body.get(2..2 + id_len)?.iter().fold(0i64, |acc, b| acc << 8 | *b as i64);
    let op = *body.get(2 + id_len)?;
    Some(Message { bytes, id, op })
}

fn op_name(tag: u8) -> &'static str {
    match tag {
        0x60 => "bind",
        0x63 => "search",
        0x66 => "modify",
        0x68 => "add",
        0x4a => "delete",
        0x6c => "modrdn",
        0x6e => "compare",
        0x77 => "extended",
        _ => "other",
    }
}

/// The response tag of a request's operation; None for those without one (unbind, abandon).
fn response_tag(request: u8) -> Option<u8> {
    match request {
        0x42 | 0x50 => None,
        0x4a => Some(0x6b), // delRequest → delResponse
        0x63 => Some(0x65), // searchRequest → searchResDone
        0x77 => Some(0x78), // extendedReq → extendedResp
        t => Some(t + 1),   // bind, modify, add, modDN, compare
    }
}

fn length(len: usize) -> Vec<u8> {
    match len {
        n if n < 0x80 => vec![n as u8],
        n => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// `LDAPMessage { id, <tag> LDAPResult { unwillingToPerform, "", text } }`.
fn refusal(id: i64, tag: u8) -> Vec<u8> {
    let text = b"injected fault: refused";
    let mut result = vec![0x0a, 0x01, 53, 0x04, 0x00, 0x04];
    result.extend(length(text.len()));
    result.extend_from_slice(text);
    let id_bytes: Vec<u8> = {
        let mut b = id.to_be_bytes().to_vec();
        while b.len() > 1 && b[0] == 0 && b[1] < 0x80 {
            b.remove(0);
        }
        b
    };
    let mut body = vec![0x02, id_bytes.len() as u8];
    body.extend(id_bytes);
    body.push(tag);
    body.extend(length(result.len()));
    body.extend(result);
    let mut message = vec![0x30];
    message.extend(length(body.len()));
    message.extend(body);
    message
}

async fn relay(client: TcpStream, server: TcpStream, state: Arc<Mutex<State>>) {
    let (mut client_r, client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    let client_w = Arc::new(tokio::sync::Mutex::new(client_w));
    // Message ids whose answers are withheld (Stall).
    let withheld: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let down = tokio::spawn({
        let (client_w, withheld) = (client_w.clone(), withheld.clone());
        async move {
            while let Some(m) = read_message(&mut server_r).await {
                if withheld.lock().unwrap().contains(&m.id) {
                    continue;
                }
                if client_w.lock().await.write_all(&m.bytes).await.is_err() {
                    break;
                }
            }
            let _ = client_w.lock().await.shutdown().await;
        }
    });
    while let Some(m) = read_message(&mut client_r).await {
        let fault = match response_tag(m.op) {
            None => None,
            Some(_) => {
                let mut s = state.lock().unwrap();
                s.seen += 1;
                s.ops.push(op_name(m.op));
                match s.armed {
                    Some((k, fault)) if s.seen == k => Some(fault),
                    _ => None,
                }
            }
        };
        match fault {
            None => {
                if server_w.write_all(&m.bytes).await.is_err() {
                    break;
                }
            }
            Some(Fault::Stall) => {
                withheld.lock().unwrap().insert(m.id);
                if server_w.write_all(&m.bytes).await.is_err() {
                    break;
                }
            }
            Some(Fault::Reset) => {
                down.abort();
                let _ = down.await;
                reset(client_r, client_w).await;
                return;
            }
            Some(Fault::Refuse) => {
                let answer = refusal(m.id, response_tag(m.op).expect("answered"));
                if client_w.lock().await.write_all(&answer).await.is_err() {
                    break;
                }
            }
        }
    }
    down.abort();
    let _ = server_w.shutdown().await;
    let _ = client_w.lock().await.shutdown().await;
}

/// Closes the client's connection with a RST (SO_LINGER 0), as a crashed peer or a
/// firewall would.
async fn reset(r: OwnedReadHalf, w: Arc<tokio::sync::Mutex<OwnedWriteHalf>>) {
    let Ok(w) = Arc::try_unwrap(w) else {
        return;
    };
    if let Ok(stream) = r.reunite(w.into_inner()) {
        // Deprecated because a non-zero linger blocks on drop; a zero one resets at once.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(std::time::Duration::ZERO));
        drop(stream);
    }
}
