//! The cluster transport over ractor_cluster: the node server, our own listener and
//! dialer, the one remote-capable actor per node (the agent), and calls with deadlines.
//!
//! - **Listener and dialer are ours.** Streams are handed to the node server as external
//!   streams, so we bind the configured address (port 0 works), set TCP keepalive and
//!   nodelay, and wrap every stream in the fault switch. The node server runs in
//!   `Isolated` mode: it never dials on its own, we dial every member with backoff.
//! - **Only the agent is remote-capable.** Each node spawns one [`Agent`] in the process
//!   groups `emporium.nodes` and `emporium.node.<name>`; peers find it there (the only
//!   way to find a remote actor). Entity actors stay local, so no proxies multiply.
//! - **Bytes in, bytes out.** The agent's message carries a [`super::wire`] envelope.
//!   Calls are `call` with a deadline; a missing peer or a timeout is an error to the
//!   caller, never a silent drop.
//! - **Fault injection (tests only).** [`FaultSwitch::set_blackhole`] drops every byte to
//!   and from this node on every cluster stream, like a network partition that leaves
//!   sessions half-open; lifting it resets the streams so sessions are dialled afresh.

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServer, NodeServerMessage, RactorClusterMessage};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub const ALL_NODES: &str = "emporium.nodes";

pub fn node_group(name: &str) -> String {
    format!("emporium.node.{name}")
}

/// The agent's message: a request envelope in, a reply envelope out.
#[derive(RactorClusterMessage)]
pub enum AgentMsg {
    Cast(Vec<u8>),
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// What the agent does with what it receives; implemented by the node.
pub trait Inbound: Send + Sync + 'static {
    /// Handles one request. Runs in its own task: the agent never waits on it.
    fn call(&self, request: Vec<u8>) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;
    fn cast(&self, request: Vec<u8>);
}

pub struct Agent;

pub struct AgentArgs {
    pub name: String,
    pub inbound: Arc<dyn Inbound>,
    pub fault: Arc<FaultSwitch>,
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = AgentArgs;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentArgs, ActorProcessingErr> {
        ractor::pg::join(ALL_NODES.to_owned(), vec![myself.get_cell()]);
        ractor::pg::join(node_group(&args.name), vec![myself.get_cell()]);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentArgs,
    ) -> Result<(), ActorProcessingErr> {
        // Belt and braces: a black-holed node also ignores what reached it.
        if state.fault.blackholed() {
            return Ok(());
        }
        match msg {
            AgentMsg::Cast(bytes) => state.inbound.cast(bytes),
            AgentMsg::Call(bytes, reply) => {
                let fut = state.inbound.call(bytes);
                tokio::spawn(async move {
                    let out = fut.await;
                    let _ = reply.send(out);
                });
            }
        }
        Ok(())
    }
}

/// Why a call to a peer got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("no session to {0}")]
    NotConnected(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("the call to {0} failed: {1}")]
    Failed(String, String),
}

/// The agent of `node` as seen from here (a remote proxy), if a session is up.
pub fn agent_of(node: &str, me: &str) -> Option<ActorRef<AgentMsg>> {
    let members = ractor::pg::get_members(&node_group(node));
    let remote = node != me;
    members
        .into_iter()
        .find(|c| c.get_id().is_local() != remote)
        .map(ActorRef::<AgentMsg>::from)
}

/// Every remote agent known through the process groups.
pub fn remote_agents() -> Vec<ActorCell> {
    ractor::pg::get_members(&ALL_NODES.to_owned())
        .into_iter()
        .filter(|c| !c.get_id().is_local())
        .collect()
}

pub async fn call(
    agent: &ActorRef<AgentMsg>,
    peer: &str,
    bytes: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    match agent
        .call(|port| AgentMsg::Call(bytes, port), Some(timeout))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(b)) => Ok(b),
        Ok(ractor::rpc::CallResult::Timeout) => Err(CallError::Timeout(peer.to_owned())),
        Ok(ractor::rpc::CallResult::SenderError) => Err(CallError::Failed(
            peer.to_owned(),
            "the reply channel closed".into(),
        )),
        Err(e) => Err(CallError::Failed(peer.to_owned(), e.to_string())),
    }
}

/// Starts the node server (isolated: it dials nobody by itself) and returns it.
pub async fn start_node_server(
    name: &str,
    cookie: &str,
) -> Result<ActorRef<NodeServerMessage>, String> {
    let server = NodeServer::new(
        0,
        cookie.to_owned(),
        name.to_owned(),
        "127.0.0.1".to_owned(),
        None,
        Some(ractor_cluster::node::NodeConnectionMode::Isolated),
    )
    .with_listen_addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let (r, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| format!("cannot start the node server: {e}"))?;
    Ok(r)
}

/// Accepts cluster connections on `listener` and hands them to the node server.
pub async fn accept_loop(
    listener: TcpListener,
    server: ActorRef<NodeServerMessage>,
    fault: Arc<FaultSwitch>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tune(&stream);
                let s = FaultStream::new(stream, fault.clone(), peer.to_string());
                if server
                    .cast(NodeServerMessage::ConnectionOpenedExternal {
                        stream: Box::new(s),
                        is_server: true,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Dials `addr` with a deadline and hands the stream to the node server.
pub async fn dial(
    server: &ActorRef<NodeServerMessage>,
    addr: &str,
    fault: &Arc<FaultSwitch>,
    timeout: Duration,
) -> Result<(), String> {
    if fault.blackholed() {
        return Err("black-holed".into());
    }
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    tune(&stream);
    let s = FaultStream::new(stream, fault.clone(), addr.to_owned());
    ractor_cluster::client_connect_external(server, Box::new(s))
        .await
        .map_err(|e| format!("session to {addr}: {e}"))
}

fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(2));
    let _ = sock.set_tcp_keepalive(&ka);
}

/// The test-only network partition switch.
#[derive(Default)]
pub struct FaultSwitch {
    blackhole: AtomicBool,
    generation: AtomicU64,
}

impl FaultSwitch {
    pub fn blackholed(&self) -> bool {
        self.blackhole.load(Ordering::Acquire)
    }

    /// On: every byte to and from this node is dropped. Off: the streams opened before
    /// are reset, so peers re-dial clean sessions.
    pub fn set_blackhole(&self, on: bool) {
        let was = self.blackhole.swap(on, Ordering::AcqRel);
        if was && !on {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A cluster TCP stream that obeys the fault switch.
pub struct FaultStream {
    stream: TcpStream,
    fault: Arc<FaultSwitch>,
    peer: String,
}

impl FaultStream {
    fn new(stream: TcpStream, fault: Arc<FaultSwitch>, peer: String) -> Self {
        Self {
            stream,
            fault,
            peer,
        }
    }
}

impl ractor_cluster::ClusterBidiStream for FaultStream {
    fn split(self: Box<Self>) -> (ractor_cluster::BoxRead, ractor_cluster::BoxWrite) {
        let generation = self.fault.generation.load(Ordering::Acquire);
        let (r, w) = self.stream.into_split();
        (
            Box::new(FaultRead {
                inner: r,
                fault: self.fault.clone(),
                generation,
                nap: None,
            }),
            Box::new(FaultWrite {
                inner: w,
                fault: self.fault,
                generation,
            }),
        )
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer.clone())
    }
}

fn reset() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "cluster stream reset after a fault-injection black hole",
    )
}

struct FaultRead {
    inner: tokio::net::tcp::OwnedReadHalf,
    fault: Arc<FaultSwitch>,
    generation: u64,
    nap: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for FaultRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = &mut *self;
        if me.fault.generation.load(Ordering::Acquire) != me.generation {
            return Poll::Ready(Err(reset()));
        }
        if me.fault.blackholed() {
            // Swallow what arrives and look again shortly: the peer sees silence.
            let mut scratch = [0u8; 4096];
            let mut sb = ReadBuf::new(&mut scratch);
            while let Poll::Ready(Ok(())) = Pin::new(&mut me.inner).poll_read(cx, &mut sb) {
                if sb.filled().is_empty() {
                    return Poll::Ready(Ok(()));
                }
                sb.clear();
            }
            let nap = me
                .nap
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(50))));
            if nap.as_mut().poll(cx).is_ready() {
                me.nap = None;
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        me.nap = None;
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

struct FaultWrite {
    inner: tokio::net::tcp::OwnedWriteHalf,
    fault: Arc<FaultSwitch>,
    generation: u64,
}

impl AsyncWrite for FaultWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.fault.generation.load(Ordering::Acquire) != self.generation {
            return Poll::Ready(Err(reset()));
        }
        if self.fault.blackholed() {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
