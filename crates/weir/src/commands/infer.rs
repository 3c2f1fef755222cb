//! `weir infer FILE...`: the pipeline weir would infer from sample files, as a table (column,
//! type, nullable, example, distinct) or as JSON, writing nothing.

use anyhow::Result;

use crate::cli::{InferArgs, InferReadArgs};

pub fn options(read: &InferReadArgs) -> weir_infer::Options {
    weir_infer::Options {
        max_rows: if read.full { None } else { Some(read.sample_rows.max(1)) },
        ..weir_infer::Options::default()
    }
}

pub fn run(args: InferArgs) -> Result<u8> {
    let inference = weir_infer::infer(&args.files, &options(&args.read))?;
    if args.json {
        outln!("{}", serde_json::to_string(&inference)?)?;
    } else {
        out!("{}", weir_infer::render::table(&inference))?;
    }
    Ok(0)
}
