//! The root of the supervision tree: the parent of every kind supervisor.
//!
//! Kind supervisors never fail on their own (they handle every child event), so a
//! failure here is a bug; the root logs it and keeps running so the other kinds stay up.

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

pub struct Root;

impl Actor for Root {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(actor = ?cell.get_id(), error = %err, "a kind supervisor failed");
                metrics::counter!("emporium_supervisor_failures_total").increment(1);
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                tracing::info!(actor = ?cell.get_id(), ?reason, "a kind supervisor stopped");
            }
            _ => {}
        }
        Ok(())
    }
}

pub async fn start() -> Result<ActorCell, SpawnErr> {
    let (r, _) = Actor::spawn(None, Root, ()).await?;
    Ok(r.get_cell())
}
