//! `tenure`: one binary, server and CLI. This is the edge where the configuration file joins
//! the command line, and errors become messages and exit codes (docs/cli.md: 0 ok, 1 failure,
//! 2 bad input, 3 held for a person, 4 not found, 5 refused or conflict, 141 closed pipe).

mod cli;
mod config;
mod creds;
mod demo;
mod govern;
mod keys;
mod ledger;
mod listing;
mod posture;
mod quickstart;
mod reconcile;
mod reviews;
mod systems;
mod table;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    // The configuration file's values join the command line where no flag or variable is set.
    let (argv, from_file) = match config::layered(std::env::args_os().collect()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(cli::EXIT_BAD_INPUT);
        }
    };
    let matches = cli::Cli::command().get_matches_from(argv);
    let args = match cli::Cli::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    // Errors are JSON when the command asked for JSON output.
    cli::JSON_ERRORS.store(asks_for_json(&matches), std::sync::atomic::Ordering::Relaxed);
    let _ = config::LAYERED.set((matches, from_file));
    let filter = tracing_subscriber::EnvFilter::try_from_env("TENURE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tenure=info"));
    match args.global.log_format {
        cli::LogFormat::Json => {
            tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
        }
        cli::LogFormat::Text => {
            use std::io::IsTerminal;
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            tracing_subscriber::fmt().with_ansi(colour).with_env_filter(filter).with_writer(std::io::stderr).init();
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<cli::StdoutClosed>().is_some() => {
            // The reader went away (`| head`): as a program killed by SIGPIPE would, quietly.
            ExitCode::from(141)
        }
        Err(e) => {
            // An engine error passed up whole still exits with its class's code.
            let engine = e.chain().find_map(|c| c.downcast_ref::<tenure_engine::EngineError>());
            let (code, exit) = engine.map_or((cli::CL_FAILED, 1), |x| (x.code(), cli::exit_code(x)));
            cli::report(code, &format!("{e:#}"), exit);
            ExitCode::from(exit)
        }
    }
}

/// The innermost subcommand was given `--output json`.
fn asks_for_json(m: &clap::ArgMatches) -> bool {
    match m.subcommand() {
        Some((_, sub)) => asks_for_json(sub),
        None => m.try_get_raw("output").ok().flatten().is_some_and(|mut v| v.any(|v| v == "json")),
    }
}

/// `tenure … | head`: when the reader goes away, printing fails; stop at once and quietly,
/// with the status a shell gives a program killed by SIGPIPE (128 + 13), as other tools do.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
