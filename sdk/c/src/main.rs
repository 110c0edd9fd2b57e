//! `sluice-c-tool`: build a sluice plugin from C sources (see the crate docs).
//!
//! ```text
//! sluice-c-tool build -o plugin.wasm src.c [more.c ...] [-- extra clang flags]
//! sluice-c-tool bindings DIR        # just write transform_plugin.{h,c} and the type object
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: sluice-c-tool build -o OUT.wasm SRC.c [SRC.c ...] [-- CLANG_FLAGS ...]\n       sluice-c-tool bindings DIR"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bindings") if args.len() == 2 => sluice_c_tool::bindings(&PathBuf::from(&args[1])).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
        }),
        Some("build") => {
            let (ours, flags) = match args.iter().position(|a| a == "--") {
                Some(i) => (&args[1..i], args[i + 1..].to_vec()),
                None => (&args[1..], vec![]),
            };
            let mut out = None;
            let mut sources = vec![];
            let mut it = ours.iter();
            while let Some(a) = it.next() {
                if a == "-o" {
                    out = it.next().map(PathBuf::from);
                } else {
                    sources.push(PathBuf::from(a));
                }
            }
            let Some(out) = out.filter(|_| !sources.is_empty()) else {
                return usage();
            };
            let work = out.with_extension("build");
            sluice_c_tool::build(&sources, &out, &work, &flags)
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
