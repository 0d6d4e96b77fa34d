//! Hooks (being built): the template language and Backrest's hook variables so far.

pub mod template;
pub mod vars;
