//! `sluice verify` accepts an untouched run and names every changed, missing or extra file.

use std::path::Path;

use sluice_test_artifacts as art;

use crate::util::*;

fn finished_run(dir: &Path) -> std::path::PathBuf {
    let input = dir.join("orders.parquet");
    let batches: Vec<_> = (0..3).map(|_| orders()).collect();
    write_parquet(&input, &batches);
    let out = dir.join("out");
    sluice()
        .args(["run", "--chunk-rows", "10", "--input"])
        .arg(&input)
        .args(["--plugin", art::DEDUPE, "--config", "key=id", "--output"])
        .arg(&out)
        .assert()
        .success();
    out
}

fn flip(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn verify_passes_untouched_and_names_each_kind_of_damage() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished_run(dir.path());
    let a = sluice().arg("verify").arg(&out).assert().success();
    assert_eq!(summary(&a.get_output().stdout)["status"], "ok");

    let state_dir = out.join("_sluice/state");
    let state = std::fs::read_dir(&state_dir).unwrap().next().unwrap().unwrap().path();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "part",
            Box::new(|o: &Path| flip(&o.join("data/part-000001.parquet"))),
            "`data/part-000001.parquet` changed",
        ),
        (
            "missing",
            Box::new(|o: &Path| std::fs::remove_file(o.join("data/part-000000.parquet")).unwrap()),
            "`data/part-000000.parquet` is missing",
        ),
        (
            "extra",
            Box::new(|o: &Path| std::fs::write(o.join("data/part-000099.parquet"), b"x").unwrap()),
            "`data/part-000099.parquet` is not part of the run",
        ),
        (
            "manifest",
            Box::new(|o: &Path| {
                let p = o.join("_sluice/manifest.json");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("\"rows_out\": ", "\"rows_out\": 1", 1);
                std::fs::write(p, t).unwrap();
            }),
            "manifest.json` lists other chunks",
        ),
        (
            "journal",
            Box::new(|o: &Path| {
                let p = o.join("_sluice/journal.jsonl");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("\"bytes\":", "\"bytes\":9", 1);
                std::fs::write(p, t).unwrap();
            }),
            "journal",
        ),
        (
            "state",
            Box::new(move |o: &Path| flip(&o.join("_sluice/state").join(state.file_name().unwrap()))),
            "plugin state",
        ),
        (
            "success",
            Box::new(|o: &Path| std::fs::remove_file(o.join("_SUCCESS")).unwrap()),
            "`_SUCCESS` is missing",
        ),
    ];
    for (name, damage, expect) in cases {
        let copy = dir.path().join(format!("copy-{name}"));
        copy_dir(&out, &copy);
        damage(&copy);
        let a = sluice().arg("verify").arg(&copy).assert().code(5);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(err.contains(expect), "{name}: expected `{expect}` in:\n{err}");
        assert_eq!(summary(&a.get_output().stdout)["status"], "failed", "{name}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
