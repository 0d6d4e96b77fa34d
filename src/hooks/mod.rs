//! Hooks: the commands and notifications a Backrest config attaches to a repo or a
//! plan. `template` and `vars` render Backrest users' Go templates, `actions` performs
//! one action with bounded time, `run` decides which hooks an event fires and what a
//! failure means for the operation. [`check_config`] refuses, at config load, a
//! template that does not parse or a notification URL footrest cannot use, naming the
//! hook. Nothing here runs restic or knows about HTTP requests coming in.

pub mod actions;
pub mod run;
pub mod template;
pub mod vars;

use crate::config::{Config, Hook, HookAction};

/// Every problem of the config's hooks, each naming its place, e.g.
/// `plans[0] "docs": hooks[1] actionWebhook.template: line 1, column 14: unknown field .Plan.Idd`.
pub fn check_config(config: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, repo) in config.repos.iter().enumerate() {
        let place = format!("repos[{i}] {:?}", repo.id);
        check_hooks(&place, &repo.hooks, &mut errors);
    }
    for (i, plan) in config.plans.iter().enumerate() {
        let place = format!("plans[{i}] {:?}", plan.id);
        check_hooks(&place, &plan.hooks, &mut errors);
    }
    errors
}

fn check_hooks(place: &str, hooks: &[Hook], errors: &mut Vec<String>) {
    for (i, hook) in hooks.iter().enumerate() {
        let Some(action) = hook.action() else {
            continue; // config validation already names a hook without an action
        };
        let key = action.key();
        let mut template = |field: &str, source: &str| {
            if let Err(e) = template::parse(source, vars::schema()) {
                errors.push(format!("{place}: hooks[{i}] {key}.{field}: {e}"));
            }
        };
        match action {
            HookAction::Command(c) => template("command", &c.command),
            HookAction::Webhook(w) => template("template", &w.template),
            HookAction::Discord(a) | HookAction::Slack(a) | HookAction::Healthchecks(a) => {
                template("template", &a.template)
            }
            HookAction::Gotify(g) => {
                template("template", &g.template);
                template("titleTemplate", &g.title_template);
            }
            HookAction::Telegram(t) => template("template", &t.template),
            HookAction::Shoutrrr(s) => {
                template("template", &s.template);
                if let Err(e) = actions::validate_shoutrrr_url(&s.shoutrrr_url) {
                    errors.push(format!("{place}: hooks[{i}] {key}.shoutrrrUrl: {e}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hooks: serde_json::Value) -> Config {
        let json = serde_json::json!({
            "version": 6, "instance": "i",
            "repos": [{"id": "r", "uri": "/r", "password": "x"}],
            "plans": [{"id": "docs", "repo": "r", "paths": ["/d"], "hooks": hooks}],
            "auth": {"disabled": true}
        });
        crate::config::parse(&json.to_string()).unwrap().0
    }

    #[test]
    fn the_shared_fixture_hooks_are_accepted() {
        let text = include_str!("../../tests/fixtures/backrest-config.json");
        let (c, _) = crate::config::parse(text).unwrap();
        assert_eq!(check_config(&c), Vec::<String>::new());
    }

    #[test]
    fn bad_templates_and_urls_name_the_hook_and_the_column() {
        let c = config(serde_json::json!([
            {"conditions": ["CONDITION_SNAPSHOT_END"], "actionCommand": {"command": "echo {{ .Plan.Idd }}"}},
            {"conditions": ["CONDITION_SNAPSHOT_END"], "actionWebhook": {"webhookUrl": "http://x/", "template": "{{ if .Error }}"}},
            {"conditions": ["CONDITION_SNAPSHOT_END"], "actionShoutrrr": {"shoutrrrUrl": "pigeon://coop/1", "template": "{{ .Summary }}"}}
        ]));
        let errors = check_config(&c);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0]
                .starts_with(r#"plans[0] "docs": hooks[0] actionCommand.command: line 1, column "#),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains(".Plan.Idd"), "{}", errors[0]);
        assert!(
            errors[1].starts_with(r#"plans[0] "docs": hooks[1] actionWebhook.template: line 1"#),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].starts_with(r#"plans[0] "docs": hooks[2] actionShoutrrr.shoutrrrUrl: "#),
            "{}",
            errors[2]
        );
        assert!(errors[2].contains("pigeon"), "{}", errors[2]);
    }
}
