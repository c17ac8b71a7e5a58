//! `curator catalog import` and `export`.

use crate::*;

#[test]
fn catalog_import_is_an_idempotent_upsert_that_round_trips() {
    let sandbox = Sandbox::new();
    let first = sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    assert!(first.stdout().contains("3 libraries, 25 series"), "{}", first.stdout());
    let before = sandbox.run(&["catalog", "export"]).success().stdout();
    sandbox.run(&["catalog", "import", "examples/catalog.yaml"]).success();
    let after = sandbox.run(&["catalog", "export"]).success().stdout();
    assert_eq!(before, after, "a second import changes nothing");

    // What export writes, import reads back to the same catalog.
    sandbox.write("exported.yaml", &after);
    sandbox.run(&["catalog", "import", "exported.yaml"]).success();
    assert_eq!(sandbox.run(&["catalog", "export"]).success().stdout(), after);
}

#[test]
fn a_bad_catalog_names_file_line_and_value_and_writes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("bad.yaml", "libraries:\n  - id: manga\n    name: Manga\n    series:\n      - id: x\n        metadata: { status: completed }\n");
    let run = sandbox.run(&["catalog", "import", "bad.yaml"]).expect_code(1);
    assert!(
        run.stderr().contains("bad.yaml:6:29: error: `status`: `\"completed\"` does not fit"),
        "{}",
        run.stderr()
    );
    let catalog = sandbox.json(&["catalog", "export", "--format", "json"]);
    assert_eq!(catalog["libraries"], serde_json::json!([]), "nothing was imported");
}
