//! The messages a researcher sees for bad recipes: file, line, column, field, and the
//! nearest registered names. Snapshot-tested so that a change in wording is reviewed.

use foil_core::recipe::Recipe;

const GOOD: &str = "\
name: t
seed: 1
device: cpu
task: {type: arithmetic, train: 10, test: 5}
policy: {type: tiny_gpt, d_model: 32, layers: 1, heads: 2, context: 40}
stages:
  - {type: sft, steps: 2, batch: 4}
  - type: rl
    steps: 2
    advantage: {type: grpo}
";

fn err(text: &str) -> String {
    foil::link_all();
    Recipe::parse(text, "recipes/t.yaml", &[])
        .expect_err("recipe should be rejected")
        .to_string()
}

#[test]
fn good_recipe_parses_and_round_trips() {
    foil::link_all();
    let r = Recipe::parse(GOOD, "recipes/t.yaml", &[]).unwrap();
    let again = Recipe::parse(&r.to_yaml(), "resolved", &[]).unwrap();
    assert_eq!(r.to_yaml(), again.to_yaml());
    assert_eq!(again.stages.len(), 2);
}

#[test]
fn misspelt_type_lists_the_nearest_names() {
    let e = err(&GOOD.replace("{type: grpo}", "{type: grpoo}"));
    assert!(e.contains("recipes/t.yaml:10:"), "{e}");
    assert!(e.contains("did you mean `grpo`"), "{e}");
    // the list of every registered estimator grows with each new part: check it, then
    // keep it out of the snapshot
    let start = e.find("expected one of ").unwrap() + "expected one of ".len();
    let end = start + e[start..].find('\n').unwrap();
    let names: Vec<&str> = e[start..end].split(", ").collect();
    assert!(
        names.contains(&"grpo") && names.contains(&"rloo"),
        "{names:?}"
    );
    let e = format!("{}<registered estimators>{}", &e[..start], &e[end..]);
    insta::assert_snapshot!(e);
}

#[test]
fn unknown_field_is_rejected_with_its_line() {
    let e = err(&GOOD.replace("steps: 2, batch: 4", "stpes: 2, batch: 4"));
    assert!(e.contains("recipes/t.yaml:7:"), "{e}");
    assert!(e.contains("did you mean `steps`"), "{e}");
    insta::assert_snapshot!(e);
}

#[test]
fn wrong_type_names_the_field() {
    let e = err(&GOOD.replace("    steps: 2\n", "    steps: x3\n"));
    assert!(e.contains("recipes/t.yaml:9:"), "{e}");
    assert!(
        e.contains("stages[1].steps") || e.contains("stages.1.steps"),
        "{e}"
    );
    insta::assert_snapshot!(e);
}

#[test]
fn truncated_recipe_is_an_error_not_a_panic() {
    let cut = &GOOD[..GOOD.find("heads: 2").unwrap()];
    let e = err(cut);
    assert!(e.starts_with("recipes/t.yaml:"), "{e}");
    insta::assert_snapshot!(e);
}

#[test]
fn bad_device_lists_the_devices() {
    let e = err(&GOOD.replace("device: cpu", "device: gpu7"));
    assert!(e.contains("recipes/t.yaml:3:1: field `device`"), "{e}");
    insta::assert_snapshot!(e);
}

#[test]
fn set_overrides_apply_and_misspelt_paths_are_errors() {
    foil::link_all();
    let r = Recipe::parse(
        GOOD,
        "recipes/t.yaml",
        &["stages.1.advantage.type=rloo".into(), "seed=9".into()],
    )
    .unwrap();
    assert_eq!(r.seed, 9);
    assert!(r.to_yaml().contains("type: rloo"), "{}", r.to_yaml());
    let e = Recipe::parse(
        GOOD,
        "recipes/t.yaml",
        &["stages.1.advantag.type=rloo".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("did you mean `advantage`"), "{e}");
    let e = Recipe::parse(GOOD, "recipes/t.yaml", &["stages.7.steps=1".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 7 out of range (the list has 2)"), "{e}");
    insta::assert_snapshot!(e);
}

#[test]
fn every_recipe_in_the_repo_checks() {
    foil::link_all();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            Recipe::load(&p, &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn every_part_is_listed_with_its_defaults() {
    foil::link_all();
    let listing = foil_core::registry::listing();
    for name in [
        "arithmetic",
        "tiny_gpt",
        "local",
        "numeric",
        "steps",
        "grpo",
        "rloo",
        "ppo_clip",
        "kl",
        "entropy",
        "nll",
        "sum",
        "dynamic_sampling",
        "sft",
        "rl",
        "eval",
    ] {
        assert!(
            listing.contains(&format!("  {name} ")),
            "`{name}` missing from foil list:\n{listing}"
        );
    }
    assert!(listing.contains("eps_high"), "{listing}");
}
