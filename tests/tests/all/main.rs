//! One integration test binary (faster to link than one per file); one module per area.

mod api;
mod broker;
mod cli;
mod confinement;
mod inspection;
mod library;
mod policy;
mod process_model;
mod profiles;
mod service;
mod sweep;
mod word_stats;
