//! The `chiprisk` binary: parse the command line, load the configuration,
//! then run the command (see `chiprisk::cli`).
#![forbid(unsafe_code)]

use chiprisk::app::Application;
use chiprisk::cli::{self, exit, Cli, Command};
use chiprisk::config::Settings;
use chiprisk::telemetry::init_logging;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Cli::parse();
    let mut settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chiprisk: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    if let Some(format) = args.log_format {
        settings.log.format = format.into();
    }
    init_logging(settings.log.format, &settings.log.level);
    let outcome = match args.command.unwrap_or(Command::Run { events: None }) {
        Command::Run { events } => {
            settings.source.file = events.or(settings.source.file);
            serve(settings)
        }
        Command::Replay(a) => cli::replay(&settings, &a),
        Command::Validate(a) => cli::validate(&settings, &a),
        Command::Backfill(a) => cli::backfill(&settings, &a),
        Command::Publish(a) => cli::publish(&settings, &a),
        Command::Schema => {
            print!("{}", cli::EVENT_SCHEMA);
            Ok(0)
        }
        Command::Config => {
            print!("{}", settings.to_toml());
            Ok(0)
        }
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("chiprisk: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

#[tokio::main]
async fn serve(settings: Settings) -> anyhow::Result<u8> {
    let shutdown = chiprisk::shutdown_signal();
    let app = Application::build(&settings).await?;
    app.run(shutdown).await?;
    Ok(0)
}
