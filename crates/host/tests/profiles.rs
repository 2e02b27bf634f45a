//! Hook profiles: `<hooks>/<driver>.profiles/<profile>/<op>/<subop>`, chosen
//! by the domain's own `<metadata>` and checked against `profile.toml`.

use virt_hooks::{Event, Layout, RunError, Runner};

use crate::util::{Hooks, stdouts};

const NS: &str = "http://virt-hooks.org/xmlns/profiles/1.0";

const GPU_TOML: &str = r#"description = "single-GPU passthrough"
[properties.gpu]
required = true
pattern = '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$'
description = "PCI address of the GPU"
[properties.audio]
pattern = '[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]'
"#;

/// A domain document whose metadata is `profiles`.
fn domain(profiles: &str) -> Vec<u8> {
    format!("<domain><name>vm1</name><metadata>{profiles}</metadata></domain>\n").into_bytes()
}

/// `<hooks:profiles>` with `body` inside, in the profiles namespace.
fn ours(body: &str) -> String {
    format!("<hooks:profiles xmlns:hooks='{NS}'>{body}</hooks:profiles>")
}

fn gpu(value: &str) -> String {
    format!(
        "<hooks:profile name='vfio'><hooks:property name='gpu'>{value}</hooks:property></hooks:profile>"
    )
}

fn event<'a>(op: &'a str, sub: &'a str, extra: &'a str, doc: &'a [u8]) -> Event<'a> {
    Event::new("qemu", "vm1", op, sub, extra).with_input(doc)
}

/// Profiles `vfio` (declared by GPU_TOML) and `plain` (no profile.toml),
/// and a per-object script; every script prints its profile variables.
fn tree() -> Hooks {
    let hooks = Hooks::new();
    let show = "echo \"p=$VIRT_HOOKS_PROFILE gpu=$VIRT_HOOKS_PROP_GPU \
                audio=${VIRT_HOOKS_PROP_AUDIO-unset}\"";
    hooks.file("qemu.profiles/vfio/profile.toml", GPU_TOML, 0o644);
    hooks.script("qemu.profiles/vfio/start/begin", show);
    hooks.script("qemu.profiles/vfio/release/end/10-a", show);
    hooks.script("qemu.profiles/plain/start/begin/10-x", show);
    hooks.script("qemu.profiles/plain/release/end", show);
    hooks.script("qemu.d/vm1/start/begin", "echo per-object; env | grep ^VIRT_HOOKS_ || true");
    hooks.script("qemu.d/vm1/release/end", "echo per-object");
    hooks.script("qemu", "echo main; env | grep ^VIRT_HOOKS_ || true");
    hooks
}

fn per_object(hooks: &Hooks) -> Runner {
    hooks.builder().layout(Layout::PerObject).build().expect("build")
}

fn refusal(err: RunError) -> String {
    match err {
        RunError::Profile { object, message, .. } => {
            assert_eq!(object, "vm1");
            message
        }
        other => panic!("not a profile refusal: {other:?}"),
    }
}

#[test]
fn profile_scripts_get_the_profile_and_its_properties() {
    let hooks = tree();
    let doc = domain(&ours(&gpu("0000:01:00.0")));
    let outcome = per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap();
    assert_eq!(
        stdouts(&outcome),
        ["p=vfio gpu=0000:01:00.0 audio=unset\n", "per-object\n"],
        "libvirt's own places keep libvirt's environment"
    );
    assert_eq!(outcome.scripts[0].profile.as_deref(), Some("vfio"));
    assert_eq!(outcome.scripts[0].argv[1..], ["vm1", "start", "begin", "-"]);
    assert_eq!(outcome.scripts[1].profile, None);
}

#[test]
fn order_is_libvirts_then_profiles_in_the_domains_order_then_per_object() {
    let hooks = tree();
    let doc = domain(&ours(&format!(
        "<hooks:profile name='plain'/>{}",
        "<hooks:profile name='vfio'><hooks:property name='gpu'>0000:01:00.0</hooks:property>\
         <hooks:property name='audio'>0000:01:00.1</hooks:property></hooks:profile>"
    )));
    let runner = hooks.builder().layout(Layout::Both).build().unwrap();
    let outcome = runner.run(&event("start", "begin", "-", &doc)).unwrap();
    assert_eq!(
        stdouts(&outcome),
        [
            "main\n",
            "p=plain gpu= audio=unset\n",
            "p=vfio gpu=0000:01:00.0 audio=0000:01:00.1\n",
            "per-object\n"
        ]
    );
}

#[test]
fn the_libvirt_layout_runs_no_profiles() {
    let hooks = tree();
    let doc = domain(&ours("<hooks:profile name='missing'/>"));
    let outcome = hooks.runner().run(&event("start", "begin", "-", &doc)).unwrap();
    assert_eq!(stdouts(&outcome), ["main\n"]);
}

#[test]
fn a_bad_profile_is_refused_at_an_abort_event_naming_domain_profile_and_property() {
    let hooks = tree();
    hooks.script("qemu.d/vm1/start/begin", "touch \"$0.ran\"");
    let cases = [
        (ours("<hooks:profile name='nope'/>"), "domain 'vm1', profile 'nope': no such profile"),
        (
            ours("<hooks:profile name='vfio'/>"),
            "domain 'vm1', profile 'vfio': required property 'gpu' is not given",
        ),
        (
            ours(&gpu("0000:01:00.0; rm -rf /")),
            "domain 'vm1', profile 'vfio': property 'gpu': value '0000:01:00.0; rm -rf /' \
             does not match the pattern",
        ),
        (
            // The pattern must match the whole value even when unanchored.
            ours(
                "<hooks:profile name='vfio'><hooks:property name='gpu'>0000:01:00.0</hooks:property>\
                  <hooks:property name='audio'>x0000:01:00.1</hooks:property></hooks:profile>",
            ),
            "property 'audio': value 'x0000:01:00.1' does not match",
        ),
        (
            ours(
                "<hooks:profile name='plain'><hooks:property name='gpu'>1</hooks:property></hooks:profile>",
            ),
            "domain 'vm1', profile 'plain': property 'gpu' is not declared by the profile",
        ),
        (
            ours("<hooks:property name='gpu'>1</hooks:property>"),
            "domain 'vm1': profile metadata, line 1: property 'gpu' outside a profile",
        ),
        (
            ours("<hooks:profile name='plain'/><hooks:profile name='plain'/>"),
            "profile 'plain' is listed twice",
        ),
        (
            ours(
                "<hooks:profile name='vfio'><hooks:property name='gpu'>0000:01:00.0</hooks:property>\
                  <hooks:property name='gpu'>0000:01:00.0</hooks:property></hooks:profile>",
            ),
            "property 'gpu' is given twice in profile 'vfio'",
        ),
        (ours("<hooks:profile name='../vfio'/>"), "profile '../vfio': not a valid profile name"),
    ];
    for (metadata, want) in cases {
        let doc = domain(&metadata);
        let err = per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap_err();
        let message = refusal(err);
        assert!(message.contains(want), "{metadata}:\n  {message}\n  wants {want}");
        assert!(!hooks.path().join("qemu.d/vm1/start/begin.ran").exists(), "nothing runs");
    }
}

#[test]
fn a_bad_profile_is_a_warning_at_an_ignore_event_and_does_not_run() {
    let hooks = tree();
    let doc = domain(&ours(&format!("<hooks:profile name='plain'/>{}", gpu("bad"))));
    let outcome = per_object(&hooks).run(&event("release", "end", "-", &doc)).unwrap();
    assert_eq!(stdouts(&outcome), ["p=plain gpu= audio=unset\n", "per-object\n"]);
    assert!(
        outcome.warnings.iter().any(|w| w.contains("domain 'vm1', profile 'vfio': property 'gpu'")
            && w.contains("does not run")),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn the_namespace_counts_never_the_prefix() {
    let hooks = tree();
    let runner = per_object(&hooks);
    // Our namespace under another prefix, and as the default namespace.
    for metadata in [
        format!("<vh:profiles xmlns:vh='{NS}'><vh:profile name='plain'/></vh:profiles>"),
        format!("<profiles xmlns='{NS}'><profile name='plain'/></profiles>"),
    ] {
        let doc = domain(&metadata);
        let outcome = runner.run(&event("start", "begin", "-", &doc)).unwrap();
        assert_eq!(outcome.scripts[0].profile.as_deref(), Some("plain"), "{metadata}");
    }
    // Another namespace under `hooks:`, and no namespace: ignored, even
    // when they name profiles that do not exist or are malformed.
    for metadata in [
        "<hooks:profiles xmlns:hooks='http://example.org/x'><hooks:profile name='nope'/>\
         <hooks:property name='x'/></hooks:profiles>"
            .to_owned(),
        "<profiles><profile name='nope'/></profiles>".to_owned(),
    ] {
        let doc = domain(&metadata);
        let outcome = runner.run(&event("start", "begin", "-", &doc)).unwrap();
        assert_eq!(stdouts(&outcome), ["per-object\n"], "{metadata}");
    }
}

#[test]
fn without_a_profiles_directory_the_metadata_is_not_read() {
    let hooks = Hooks::new();
    hooks.script("qemu.d/vm1/start/begin", "echo per-object");
    let doc = domain(&ours("<hooks:property name='gpu'>1</hooks:property>"));
    let outcome = per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap();
    assert_eq!(stdouts(&outcome), ["per-object\n"]);
}

#[test]
fn a_filters_document_passes_through_profiles_then_per_object_scripts() {
    let hooks = Hooks::new();
    hooks.script("qemu.profiles/a/restore/begin", "sed s/one/two/");
    hooks.script("qemu.profiles/b/restore/begin", "sed s/two/three/");
    hooks.script("qemu.d/vm1/restore/begin", "sed s/three/four/");
    let doc = domain(&ours("<hooks:profile name='a'/><hooks:profile name='b'/>"))
        .into_iter()
        .chain(b"<!-- one -->".iter().copied())
        .collect::<Vec<u8>>();
    let outcome = per_object(&hooks).run(&event("restore", "begin", "-", &doc)).unwrap();
    let output = String::from_utf8(outcome.output.clone().unwrap()).unwrap();
    assert!(output.ends_with("<!-- four -->"), "{output}");
}

#[test]
fn profile_toml_mistakes_name_the_file_and_line() {
    let hooks = tree();
    hooks.file(
        "qemu.profiles/plain/profile.toml",
        "description = \"x\"\n[properties.gpu]\nrequird = true\n",
        0o644,
    );
    let doc = domain(&ours("<hooks:profile name='plain'/>"));
    let message = refusal(per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap_err());
    assert!(message.contains("plain/profile.toml, line 3: unknown field `requird`"), "{message}");
    for (toml, line, want) in [
        ("[properties.GPU]\n", 1, "property name 'GPU' is not [a-z][a-z0-9_]*"),
        ("\n[properties.gpu]\npattern = '('\n", 3, "bad pattern of property 'gpu'"),
        ("colour = 1\n", 1, "unknown field `colour`"),
    ] {
        hooks.file("qemu.profiles/plain/profile.toml", toml, 0o644);
        let message =
            refusal(per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap_err());
        assert!(message.contains(&format!("line {line}: {want}")), "{toml}: {message}");
    }
}

#[test]
fn an_unsafe_profile_toml_is_refused() {
    let hooks = tree();
    hooks.set_mode("qemu.profiles/vfio/profile.toml", 0o666);
    let doc = domain(&ours(&gpu("0000:01:00.0")));
    let message = refusal(per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap_err());
    assert!(message.contains("profile 'vfio': profile.toml is unsafe"), "{message}");
}

#[test]
fn plan_shows_the_profiles_and_their_scripts() {
    let hooks = tree();
    let doc = domain(&ours(&gpu("0000:01:00.0")));
    let plan = per_object(&hooks).plan(&event("start", "begin", "-", &doc)).unwrap();
    assert_eq!(plan.profiles.len(), 1);
    assert_eq!(plan.profiles[0].name, "vfio");
    let env: Vec<(&str, &str)> =
        plan.profiles[0].env.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
    assert_eq!(env, [("VIRT_HOOKS_PROFILE", "vfio"), ("VIRT_HOOKS_PROP_GPU", "0000:01:00.0")]);
    let scripts: Vec<Option<&str>> = plan.scripts.iter().map(|s| s.profile.as_deref()).collect();
    assert_eq!(scripts, [Some("vfio"), None]);
    // What run would refuse, plan refuses.
    let bad = domain(&ours(&gpu("x")));
    assert!(matches!(
        per_object(&hooks).plan(&event("start", "begin", "-", &bad)),
        Err(RunError::Profile { .. })
    ));
}

#[test]
fn check_lists_every_profile_with_its_properties_and_scripts() {
    let hooks = tree();
    hooks.file("qemu.profiles/plain/start/notes", "x", 0o644);
    hooks.file("qemu.profiles/broken/profile.toml", "nope = 1\n", 0o644);
    let report = per_object(&hooks).check();
    let qemu = report.drivers.iter().find(|d| d.driver == "qemu").unwrap();
    let names: Vec<&str> = qemu.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["broken", "plain", "vfio"]);
    let vfio = &qemu.profiles[2];
    assert_eq!(vfio.description.as_deref(), Some("single-GPU passthrough"));
    let props: Vec<(&str, bool)> =
        vfio.properties.iter().map(|p| (p.name.as_str(), p.required)).collect();
    assert_eq!(props, [("audio", false), ("gpu", true)]);
    assert!(vfio.scripts.iter().all(|s| s.runs), "{:?}", vfio.scripts);
    assert_eq!(vfio.scripts.len(), 2);
    let problems = report.problems();
    assert!(problems.iter().any(|p| p.contains("broken/profile.toml, line 1")), "{problems:?}");
    hooks.set_mode("qemu.profiles/vfio/start/begin", 0o777);
    let report = per_object(&hooks).check();
    assert!(
        report.problems().iter().any(|p| p.contains("vfio/start/begin: does not run: refused")),
        "{:?}",
        report.problems()
    );
}

#[test]
fn a_world_writable_profile_script_is_refused_like_any_other() {
    let hooks = tree();
    hooks.set_mode("qemu.profiles/vfio/start/begin", 0o777);
    let doc = domain(&ours(&gpu("0000:01:00.0")));
    let err = per_object(&hooks).run(&event("start", "begin", "-", &doc)).unwrap_err();
    let outcome = err.outcome().expect("scripts ran");
    assert!(outcome.scripts[0].refused.is_some());
    assert_eq!(outcome.scripts[0].profile.as_deref(), Some("vfio"));
}

#[test]
fn the_audit_log_names_the_profile_of_each_run() {
    let hooks = tree();
    let log = hooks.path().join("audit.log");
    let runner =
        hooks.builder().layout(Layout::PerObject).audit_log(Some(log.clone())).build().unwrap();
    let doc = domain(&ours(&gpu("0000:01:00.0")));
    runner.run(&event("start", "begin", "-", &doc)).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let profiles: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["profile"].clone())
        .collect();
    assert_eq!(profiles, [serde_json::json!("vfio"), serde_json::Value::Null]);
}
