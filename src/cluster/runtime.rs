//! The cluster's running parts: start-up (node server, listener, agent), the membership
//! loop (heartbeats with deadlines, re-dialling with backoff, epoch gossip, quorum), the
//! join loop of a new node, and the handling of every request a peer sends.

use super::map::MemberInfo;
use super::node::Cluster;
use super::transport::{self, Agent, AgentArgs, Inbound};
use super::wire::{self, JoinError, Request, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Cluster {
    /// Binds the cluster listener, starts the node server and the agent, then the loops.
    /// Returns the bound cluster address.
    pub async fn start(
        &self,
        http_addr: SocketAddr,
        data_dir: &Path,
    ) -> Result<SocketAddr, String> {
        let cfg = self.config().clone();
        let listener = tokio::net::TcpListener::bind(&cfg.listen_addr)
            .await
            .map_err(|e| format!("cannot listen on {} (cluster): {e}", cfg.listen_addr))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        std::fs::write(data_dir.join("cluster.addr"), bound.to_string())
            .map_err(|e| e.to_string())?;
        {
            let mut info = self.inner.info.write();
            info.addr = if cfg.advertise_addr.is_empty() {
                bound.to_string()
            } else {
                cfg.advertise_addr.clone()
            };
            info.http_addr = if cfg.advertise_http_addr.is_empty() {
                http_addr.to_string()
            } else {
                cfg.advertise_http_addr.clone()
            };
        }
        let server = transport::start_node_server(self.name(), &cfg.cookie.0).await?;
        let _ = self.inner.server.set(server.clone());
        tokio::spawn(transport::accept_loop(
            listener,
            server,
            self.fault().clone(),
        ));
        let inbound: Arc<dyn Inbound> = Arc::new(self.clone());
        ractor::Actor::spawn(
            None,
            Agent,
            AgentArgs {
                name: self.name().to_owned(),
                inbound,
                fault: self.fault().clone(),
            },
        )
        .await
        .map_err(|e| format!("cannot start the cluster agent: {e}"))?;
        if self.map().is_none() && cfg.seeds.is_empty() {
            self.bootstrap().await.map_err(|e| e.to_string())?;
        }
        tracing::info!(node = %self.name(), addr = %bound, epoch = self.epoch(), "cluster transport listening");
        let me = self.clone();
        tokio::spawn(async move { me.membership_loop().await });
        let me = self.clone();
        tokio::spawn(async move { me.handoff_loop().await });
        Ok(bound)
    }

    async fn membership_loop(self) {
        let interval = Duration::from_millis(self.config().heartbeat_interval_ms);
        let mut redial: HashMap<String, (Instant, Duration)> = HashMap::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.inner.membership_wake.notified() => {}
            }
            if self.map().is_none() {
                self.try_join(&mut redial).await;
                continue;
            }
            let map = self.map().expect("checked above");
            let peers: Vec<(String, String)> = map
                .members
                .iter()
                .filter(|(n, _)| n.as_str() != self.name())
                .map(|(n, i)| (n.clone(), i.addr.clone()))
                .collect();
            let beats = peers.iter().map(|(peer, addr)| {
                let me = self.clone();
                let peer = peer.clone();
                let addr = addr.clone();
                let due = redial
                    .get(&peer)
                    .is_none_or(|(at, _)| Instant::now() >= *at);
                async move {
                    if transport::agent_of(&peer, me.name()).is_none() {
                        if due {
                            let ok = me.dial(&addr).await;
                            return (peer, Some(ok));
                        }
                        return (peer, None);
                    }
                    me.heartbeat(&peer, interval * 2).await;
                    (peer, None)
                }
            });
            for (peer, dialled) in futures::future::join_all(beats).await {
                match dialled {
                    Some(true) => {
                        redial.remove(&peer);
                    }
                    Some(false) => {
                        // Exponential backoff with jitter, 100 ms up to 2 s.
                        let next = redial
                            .get(&peer)
                            .map(|(_, d)| (*d * 2).min(Duration::from_secs(2)))
                            .unwrap_or(Duration::from_millis(100));
                        let jitter = Duration::from_millis(rand::random::<u64>() % 50);
                        redial.insert(peer, (Instant::now() + next + jitter, next));
                    }
                    None => {}
                }
            }
            self.update_quorum();
        }
    }

    async fn dial(&self, addr: &str) -> bool {
        let Some(server) = self.inner.server.get() else {
            return false;
        };
        let timeout = Duration::from_millis(self.config().call_timeout_ms);
        match transport::dial(server, addr, self.fault(), timeout).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(addr, error = %e, "dial failed");
                false
            }
        }
    }

    async fn heartbeat(&self, peer: &str, timeout: Duration) {
        let req = Request::Heartbeat {
            from: self.name().to_owned(),
            epoch: self.epoch(),
        };
        let Ok(Response::Heartbeat { epoch }) = self.call(peer, req, timeout).await else {
            return;
        };
        let now = self.now_ms();
        self.inner.detector.lock().heard(peer, now);
        self.inner.peer_epochs.lock().insert(peer.to_owned(), epoch);
        let mine = self.epoch();
        if epoch > mine {
            // The peer has a newer committed map: fetch and adopt it.
            let t = Duration::from_millis(self.config().call_timeout_ms);
            if let Ok(Response::Map(Some(m))) = self.call(peer, Request::GetMap, t).await {
                self.adopt(m).await;
            }
        } else if epoch < mine {
            if let Some(m) = self.map() {
                let t = Duration::from_millis(self.config().call_timeout_ms);
                let _ = self
                    .call(
                        peer,
                        Request::Meta(super::paxos::MetaMsg::Commit { map: (*m).clone() }),
                        t,
                    )
                    .await;
            }
        }
    }

    /// A node without a map asks the seeds to let it join, until one does.
    async fn try_join(&self, redial: &mut HashMap<String, (Instant, Duration)>) {
        let seeds = self.config().seeds.clone();
        if transport::remote_agents().is_empty() {
            for s in &seeds {
                let due = redial.get(s).is_none_or(|(at, _)| Instant::now() >= *at);
                if due && !self.dial(s).await {
                    redial.insert(
                        s.clone(),
                        (Instant::now() + Duration::from_millis(500), Duration::ZERO),
                    );
                }
            }
            // A session that connected announces its agent shortly: ask to join as soon
            // as it does (within one heartbeat interval), not at the next tick.
            let until = Instant::now() + Duration::from_millis(self.config().heartbeat_interval_ms);
            while transport::remote_agents().is_empty() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if transport::remote_agents().is_empty() {
                return;
            }
        }
        let info = self.inner.info.read().clone();
        let timeout = Duration::from_millis(self.config().call_timeout_ms * 3);
        for cell in transport::remote_agents() {
            let agent = ractor::ActorRef::<transport::AgentMsg>::from(cell);
            let req = wire::encode(Request::Join {
                name: self.name().to_owned(),
                info: info.clone(),
            });
            let Ok(bytes) = transport::call(&agent, "seed", req, timeout).await else {
                continue;
            };
            match wire::decode::<Response>(&bytes) {
                Ok(Response::Joined(Ok(map))) => {
                    tracing::info!(epoch = map.epoch, "joined the cluster");
                    self.adopt(map).await;
                    return;
                }
                Ok(Response::Joined(Err(e))) => {
                    tracing::info!(error = %e, "join not possible yet; retrying");
                }
                other => tracing::debug!(?other, "unexpected join reply"),
            }
        }
    }

    /// Handles a peer's request.
    async fn serve(self, req: Request) -> Response {
        match req {
            Request::Heartbeat { .. } => Response::Heartbeat {
                epoch: self.epoch(),
            },
            Request::GetMap => Response::Map(self.map().map(|m| (*m).clone())),
            Request::Meta(msg) => Response::Meta(self.on_meta(msg).await),
            Request::Join { name, info } => Response::Joined(self.handle_join(name, info).await),
            Request::Entity {
                kind,
                id,
                op,
                timeout_ms,
                epoch: _,
            } => {
                let Ok(_permit) = self.inner.inbound.clone().try_acquire_owned() else {
                    return Response::Entity(Err(wire::RemoteError::Unavailable {
                        kind: crate::router::UnavailableKind::Overloaded,
                        retry_after_ms: 1000,
                        detail: "too many forwarded requests".into(),
                    }));
                };
                let Some(kind) = crate::domain::EntityKind::from_byte(kind) else {
                    return Response::Error(format!("unknown entity kind {kind}"));
                };
                let Some(local) = self.inner.local.get().cloned() else {
                    return Response::Error("this node is starting".into());
                };
                let timeout = Duration::from_millis(timeout_ms.min(60_000));
                Response::Entity(local.entity(kind, id, op, timeout).await)
            }
            Request::Handoff(chunk) => Response::HandoffStored(self.receive_chunk(chunk).await),
            Request::PushMachine {
                machine_id,
                command_id,
                command,
            } => {
                let pushed = self
                    .inner
                    .local
                    .get()
                    .is_some_and(|l| l.push_machine(&machine_id, command_id, &command));
                Response::Pushed(pushed)
            }
            Request::PartitionRead {
                read,
                partitions,
                timeout_ms,
                epoch: _,
            } => {
                use crate::router::listing::ReadFailure;
                let Ok(_permit) = self.inner.inbound.clone().try_acquire_owned() else {
                    return Response::PartitionRead(Err(ReadFailure::Unavailable {
                        kind: crate::router::UnavailableKind::Overloaded,
                        detail: "too many forwarded requests".into(),
                    }));
                };
                let Some(local) = self.inner.local.get().cloned() else {
                    return Response::PartitionRead(Err(ReadFailure::Unavailable {
                        kind: crate::router::UnavailableKind::ClusterJoining,
                        detail: "this node is starting".into(),
                    }));
                };
                let timeout = Duration::from_millis(timeout_ms.min(60_000));
                Response::PartitionRead(local.partition_read(read, partitions, timeout).await)
            }
            Request::Replay { op, timeout_ms } => {
                use crate::router::replay::ReplayFailure;
                let Ok(_permit) = self.inner.inbound.clone().try_acquire_owned() else {
                    return Response::Replayed(Err(ReplayFailure::Unavailable(
                        "too many forwarded requests".into(),
                    )));
                };
                let Some(local) = self.inner.local.get().cloned() else {
                    return Response::Replayed(Err(ReplayFailure::Unavailable(
                        "this node is starting".into(),
                    )));
                };
                let timeout = Duration::from_millis(timeout_ms.min(60_000));
                Response::Replayed(local.replay(op, timeout).await)
            }
        }
    }

    async fn handle_join(
        &self,
        name: String,
        info: MemberInfo,
    ) -> Result<super::map::ClusterMap, JoinError> {
        let map = self
            .map()
            .ok_or_else(|| JoinError::Unavailable("this node has not joined yet".into()))?;
        if map.members.get(&name).is_some_and(|m| m.addr == info.addr) {
            return Ok((*map).clone());
        }
        if let Some(down) = map
            .members
            .keys()
            .find(|n| self.health(n) != super::detector::Health::Alive)
        {
            return Err(JoinError::Unavailable(format!(
                "member {down} is not alive"
            )));
        }
        self.propose(|m| m.join(&name, info.clone()))
            .await
            .map_err(|e| match e {
                super::propose::ProposeError::Refused(r) => JoinError::Refused(r),
                other => JoinError::Unavailable(other.to_string()),
            })
    }
}

impl Inbound for Cluster {
    fn call(&self, request: Vec<u8>) -> Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>> {
        let me = self.clone();
        Box::pin(async move {
            let resp = match wire::decode::<Request>(&request) {
                Ok(req) => me.serve(req).await,
                Err(e) => Response::Error(e),
            };
            wire::encode(resp)
        })
    }

    fn cast(&self, request: Vec<u8>) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Ok(req) = wire::decode::<Request>(&request) {
                let _ = me.serve(req).await;
            }
        });
    }
}
