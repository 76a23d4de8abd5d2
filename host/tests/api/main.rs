//! HTTP tests against the real host with the real plugins, on SQLite and PostgreSQL.
//! One binary (faster to build and link); one module per area.

#[macro_use]
mod helpers;

mod shop;

mod analytics;
mod auth;
mod bundles;
mod cart;
mod catalog;
mod cli;
mod compat;
mod console;
mod coupons;
mod crash;
mod delivery;
mod dev;
mod effects;
mod files;
mod holds;
mod images;
mod journey;
mod messaging;
mod notifications;
mod oidc;
mod orders;
mod payments;
mod platform;
mod promotions;
mod push;
mod registry;
mod replicas;
mod sandbox;
mod search;
mod storefront;
