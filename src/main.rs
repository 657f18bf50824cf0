//! The `snapguard` binary: parse, set up logging, run, report, exit.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = snapguard::app::parse();
    snapguard::logging::init(cli.log_format, cli.verbose as i8 - cli.quiet as i8);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(snapguard::exit_codes::INTERNAL as u8);
        }
    };
    match runtime.block_on(snapguard::app::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
