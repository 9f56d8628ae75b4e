//! Order routes: read, cancel (shopper), fulfil and refund (operator).

use super::error::ApiError;
use super::extract::uuid;
use super::{json, views};
use crate::actors::entity::now_ms;
use crate::app::App;
use crate::domain::order::{Order, OrderCommand, OrderState};
use std::time::Duration;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

async fn existing(app: &App, id: Uuid) -> Result<OrderState, ApiError> {
    let o = app.router.get::<Order>(&id.to_string()).await?;
    if o.placement.is_some() {
        Ok(o)
    } else {
        Err(ApiError::not_found(format!("no order {id}")))
    }
}

pub async fn get(app: App, id: String) -> Result<Response, ApiError> {
    let id = uuid("order id", &id)?;
    let o = existing(&app, id).await?;
    Ok(json(StatusCode::OK, &views::order(id, &o)))
}

/// Sends a command, then waits briefly for the saga it starts: 200 when settled, 202
/// while compensation or the refund is still running.
async fn command_and_wait(
    app: App,
    id: String,
    cmd: fn(u64) -> OrderCommand,
) -> Result<Response, ApiError> {
    let id = uuid("order id", &id)?;
    existing(&app, id).await?;
    app.router
        .command::<Order>(&id.to_string(), cmd(now_ms()))
        .await?;
    let wait = Duration::from_millis(app.config.checkout.wait_ms);
    match app
        .router
        .wait_settled::<Order>(&id.to_string(), wait)
        .await?
    {
        Some(o) => Ok(json(StatusCode::OK, &views::order(id, &o))),
        None => Ok(json(
            StatusCode::ACCEPTED,
            &views::order(id, &existing(&app, id).await?),
        )),
    }
}

pub async fn cancel(app: App, id: String) -> Result<Response, ApiError> {
    command_and_wait(app, id, |at| OrderCommand::Cancel { at }).await
}

pub async fn fulfil(
    app: App,
    id: String,
    auth: Result<(), ApiError>,
) -> Result<Response, ApiError> {
    auth?;
    command_and_wait(app, id, |at| OrderCommand::Fulfil { at }).await
}

pub async fn refund(
    app: App,
    id: String,
    auth: Result<(), ApiError>,
) -> Result<Response, ApiError> {
    auth?;
    command_and_wait(app, id, |at| OrderCommand::RequestRefund { at }).await
}
