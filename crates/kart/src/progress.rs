//! Progress bars on stderr: one per reader and a total. Hidden when stderr
//! is not a terminal or with `--json`, so logs and pipes stay clean.

use crate::output::Output;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar per reader and one for the whole run.
#[derive(Debug)]
pub struct Progress {
    _multi: MultiProgress,
    readers: Vec<ProgressBar>,
    total: ProgressBar,
}

impl Progress {
    /// Bars for `readers` and a total of `total` items.
    pub fn new(out: Output, readers: &[String], total: u64) -> Self {
        let multi = if out.progress {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        let width = readers.iter().map(String::len).max().unwrap_or(5).max(5);
        let reader_style = ProgressStyle::with_template(&format!(
            "{{prefix:>{width}}} {{spinner}} {{pos:>4}} done  {{wide_msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let total_style = ProgressStyle::with_template(&format!(
            "{{prefix:>{width}}} [{{bar:30}}] {{pos}}/{{len}}  {{elapsed}}  {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bars = readers
            .iter()
            .map(|r| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(reader_style.clone());
                b.set_prefix(kart_spec::input::printable(r));
                b
            })
            .collect();
        let total_bar = multi.add(ProgressBar::new(total));
        total_bar.set_style(total_style);
        total_bar.set_prefix("total");
        Self {
            _multi: multi,
            readers: bars,
            total: total_bar,
        }
    }

    /// Shows what reader `i` is doing now.
    pub fn status(&self, i: usize, msg: impl Into<String>) {
        if let Some(b) = self.readers.get(i) {
            b.set_message(kart_spec::input::printable(&msg.into()));
            b.tick();
        }
    }

    /// One item done on reader `i`.
    pub fn done(&self, i: usize, msg: impl Into<String>) {
        if let Some(b) = self.readers.get(i) {
            b.inc(1);
            b.set_message(kart_spec::input::printable(&msg.into()));
        }
        self.total.inc(1);
    }

    /// Stops every bar and leaves the last state on screen.
    pub fn finish(&self) {
        for b in &self.readers {
            b.finish();
        }
        self.total.finish();
    }
}
