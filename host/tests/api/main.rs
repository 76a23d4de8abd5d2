//! HTTP tests against the real host with the real plugins, on SQLite and PostgreSQL.
//! One binary (faster to build and link); one module per area.

#[macro_use]
mod helpers;

mod auth;
mod cart;
mod catalog;
mod orders;
mod platform;
