//! Agent profiles: created from `user.created` or on the agent's first call, the
//! agent's own status and location, and the admin's list of agents.

use kirana_sdk::prelude::*;

use crate::db::{self, Agent};
use crate::dispatch::{self, publish};
use crate::peers;
use crate::rules::{self, AgentStatus};

/// `user.created`: a `delivery_agent` gets an `offline` profile (once).
pub fn user_created(user_id: &str, name: &str, phone: Option<&str>) -> Result<(), ApiError> {
    db::insert_agent(user_id, name, phone)?;
    Ok(())
}

/// The caller's profile and whether it was just read from auth. A profile missing
/// because `user.created` is not handled yet is made here from auth's user.
fn profile_of(user_id: &str) -> Result<(Agent, bool), ApiError> {
    if let Some(a) = db::agent_by_user(user_id)? {
        return Ok((a, false));
    }
    let user = peers::user(user_id)?.ok_or_else(|| ApiError::not_found("agent profile"))?;
    if user.role != "delivery_agent" {
        return Err(ApiError::forbidden("only delivery agents have a profile"));
    }
    db::insert_agent(user_id, &user.name, user.phone.as_deref())?;
    let agent = db::agent_by_user(user_id)?
        .ok_or_else(|| ApiError::internal("the agent profile vanished after insert"))?;
    Ok((agent, true))
}

/// The calling agent's profile (made on first use).
pub fn caller_profile(req: &Request) -> Result<Agent, ApiError> {
    let user_id = req.user()?.user_id.clone();
    profile_of(&user_id).map(|(a, _)| a)
}

/// The agent's current name and phone from auth, stored when they changed. Best
/// effort: when auth cannot answer, the stored copy is used.
pub fn refresh_contact(agent: &mut Agent) {
    match peers::user(&agent.user_id) {
        Ok(Some(u)) => {
            if u.name != agent.name || u.phone != agent.phone {
                if let Err(e) = db::update_contact(&agent.id, &u.name, u.phone.as_deref()) {
                    dispatch::log_failure("storing an agent's contact", &e.into());
                }
                agent.name = u.name;
                agent.phone = u.phone;
            }
        }
        Ok(None) => {}
        Err(e) => dispatch::log_failure("reading an agent's contact from auth", &e),
    }
}

/// `GET /api/v1/delivery/me`.
pub fn me(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    let (mut agent, fresh) = profile_of(&user_id)?;
    if !fresh {
        refresh_contact(&mut agent);
    }
    Ok(Response::ok(&agent))
}

#[derive(Debug, Deserialize)]
struct StatusBody {
    status: String,
}

/// `PUT /api/v1/delivery/me/status {status: available|offline}`. A busy agent cannot
/// change status (409 conflict) until its delivery is done; repeating the current
/// status is a no-op. Becoming available takes the oldest waiting delivery at once, so
/// the answer may already say `busy`.
pub fn set_status(req: &Request) -> Result<Response, ApiError> {
    let body: StatusBody = req.json()?;
    let to = AgentStatus::parse_requested(body.status.trim())?;
    let agent = caller_profile(req)?;
    let from = agent.status().ok_or_else(|| {
        ApiError::internal(format!("agent {} has status {}", agent.id, agent.status))
    })?;
    if from == AgentStatus::Busy {
        return Err(busy());
    }
    if from != to {
        let now = now_rfc3339();
        if db::set_agent_status(None, &agent.id, from, to, &now)? != 1 {
            // Assigned (busy) or changed by another request meanwhile.
            return Err(busy());
        }
        if to == AgentStatus::Available {
            dispatch::dispatch_quietly();
        }
    }
    let agent = db::agent(&agent.id)?.ok_or_else(|| ApiError::not_found("agent profile"))?;
    Ok(Response::ok(&agent))
}

fn busy() -> ApiError {
    ApiError::conflict("the agent is busy with a delivery; finish it first")
}

/// `POST /api/v1/delivery/me/location {lat, lon}` → 204. Stored as the agent's last
/// location, appended to the active delivery's path (if any) and published as
/// `delivery.location_updated` (the notifications plugin pushes it to the customer).
pub fn location(req: &Request) -> Result<Response, ApiError> {
    let body: kirana_sdk::serde_json::Value = req.json()?;
    let (lat, lon) = rules::parse_location(&body)?;
    let agent = caller_profile(req)?;
    let now = now_rfc3339();
    db::set_location(&agent.id, lat, lon, &now)?;
    let active = db::active_for_agent(&agent.id)?.into_iter().next();
    if let Some(d) = &active {
        db::append_path(&d.id, lat, lon, &now)?;
    }
    publish(
        "delivery.location_updated",
        &json!({
            "agent_id": agent.id, "agent_user_id": agent.user_id,
            "lat": lat, "lon": lon, "at": now,
            "delivery_id": active.as_ref().map(|d| &d.id),
            "order_id": active.as_ref().map(|d| &d.order_id),
            "user_id": active.as_ref().map(|d| &d.user_id),
        }),
    );
    Ok(Response::no_content())
}

/// `GET /api/v1/admin/delivery-agents?status=&page=&page_size=`: the profiles, oldest
/// first (admins need the profile ids to reassign).
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let status = match req.query("status") {
        None | Some("") => None,
        Some(s) => Some(AgentStatus::parse_filter(s)?),
    };
    let (items, total) = db::list_agents(status, paging)?;
    Ok(Response::ok(&Paged::new(items, paging, total)))
}
