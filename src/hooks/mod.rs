//! Hooks: the actions a hook performs (commands and notifications). This module is
//! being built; conditions, templates and their wiring join it at merge.

pub mod actions;
