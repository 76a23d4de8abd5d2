//! Routes only other plugins reach (through `services::call`); the gateway never
//! exposes them. The cart reads prices through `lookup` (orders take stock through
//! [`crate::holds`]). Their shapes are a contract: see docs/plugins/catalog.md.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value};

use crate::input::parse_lookup;

/// `POST /internal/products/lookup {"ids": [..], "known"?: {stamp, ids}}` →
/// `{"items": [ProductSummary], "stamp"?, "unchanged"?}` for the ids that exist, active
/// or not, in the order asked (duplicates once); unknown ids are absent; more than 100
/// ids in all is 400. Served from the product cache ([`crate::batch`]).
pub fn lookup(req: &Request) -> Result<Response, ApiError> {
    let body: Map<String, Value> = req.json()?;
    crate::batch::lookup(parse_lookup(&body)?)
}
