//! Load schedules, as ghz has them: a constant load (one step), a step
//! schedule (`START:STEP:MAX/DURATION`) or a linear ramp
//! (`FROM:TO/DURATION`), of the call rate or of the concurrency. A schedule
//! is a list of [`Step`]s run one after the other, each reported on its own row.

use std::time::Duration;

/// Most steps a schedule may have; more is surely a typo (a step of 1 where 100 was meant).
pub const MAX_STEPS: usize = 1000;

/// How many steps a ramp is cut into when `--ramp-steps` is not given.
pub const DEFAULT_RAMP_STEPS: usize = 10;

/// What a schedule varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Varies {
    /// Calls per second, in all.
    Rate,
    /// Calls in flight, in all.
    Concurrency,
}

/// A schedule as given on the command line, before it is cut into steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// `START:STEP:MAX/DURATION`: START, START+STEP, ... up to MAX (included
    /// when reached exactly), each for DURATION.
    Step {
        /// The first value.
        start: f64,
        /// What each step adds (may be negative, to step down).
        step: f64,
        /// The last value, not passed.
        max: f64,
        /// How long each step lasts.
        duration: Duration,
    },
    /// `FROM:TO/DURATION`: from FROM to TO (both included) over DURATION in all,
    /// as equal steps.
    Ramp {
        /// The first step's value.
        from: f64,
        /// The last step's value.
        to: f64,
        /// The whole ramp's length.
        duration: Duration,
    },
}

/// One step of a run: its load and how long it is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Calls per second to aim at; unlimited when none.
    pub rate: Option<f64>,
    /// Calls in flight.
    pub concurrency: usize,
    /// How long the step is measured (none: the run's `--duration`/`--requests`).
    pub duration: Option<Duration>,
}

/// Parses `START:STEP:MAX/DURATION` (e.g. `100:100:500/2s`).
pub fn parse_step(text: &str) -> Result<Shape, String> {
    let usage = || format!("expected START:STEP:MAX/DURATION like 100:100:500/2s, not {text:?}");
    let (values, duration) = text.split_once('/').ok_or_else(usage)?;
    let values: Vec<&str> = values.split(':').collect();
    let [start, step, max] = values.as_slice() else { return Err(usage()) };
    let (start, step, max) = (number(start)?, number(step)?, number(max)?);
    let duration = parse_duration(duration)?;
    if step == 0.0 {
        return Err(format!("{text:?}: the STEP must not be 0"));
    }
    if (max - start) * step < 0.0 {
        return Err(format!("{text:?}: a STEP of {step} never goes from {start} to {max}"));
    }
    let steps = ((max - start) / step).floor() + 1.0;
    if steps > MAX_STEPS as f64 {
        return Err(format!("{text:?} makes {steps} steps; at most {MAX_STEPS}"));
    }
    Ok(Shape::Step { start, step, max, duration })
}

/// Parses `FROM:TO/DURATION` (e.g. `100:1000/10s`).
pub fn parse_ramp(text: &str) -> Result<Shape, String> {
    let usage = || format!("expected FROM:TO/DURATION like 100:1000/10s, not {text:?}");
    let (values, duration) = text.split_once('/').ok_or_else(usage)?;
    let (from, to) = values.split_once(':').ok_or_else(usage)?;
    let (from, to) = (number(from)?, number(to)?);
    Ok(Shape::Ramp { from, to, duration: parse_duration(duration)? })
}

fn number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("{text:?} is not a number")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("a schedule's DURATION must be more than 0".into()),
        Err(error) => Err(format!("DURATION {text:?}: {error}")),
    }
}

impl Shape {
    /// The values of the steps and how long each lasts; a ramp is cut into
    /// `ramp_steps` equal steps, the first at FROM and the last at TO.
    pub fn values(&self, ramp_steps: usize) -> Vec<(f64, Duration)> {
        match *self {
            Self::Step { start, step, max, duration } => {
                let count = ((max - start) / step).floor() as usize + 1;
                (0..count).map(|i| (start + step * i as f64, duration)).collect()
            }
            Self::Ramp { from, to, duration } => {
                let count = ramp_steps.max(1);
                let each = duration / u32::try_from(count).unwrap_or(u32::MAX);
                (0..count)
                    .map(|i| {
                        let share = if count == 1 { 1.0 } else { i as f64 / (count - 1) as f64 };
                        (from + (to - from) * share, each)
                    })
                    .collect()
            }
        }
    }

    /// The steps of this schedule of `varies`, the other value held at
    /// `rate` or `concurrency`. Rates must be at least `min_rate` and
    /// concurrencies whole numbers from 1: anything else is an error for the user.
    pub fn steps(
        &self,
        varies: Varies,
        rate: Option<f64>,
        concurrency: usize,
        ramp_steps: usize,
        min_rate: f64,
    ) -> Result<Vec<Step>, String> {
        // A ramp's steps fall between whole numbers; a concurrency goes to the nearest.
        let round = varies == Varies::Concurrency && matches!(self, Self::Ramp { .. });
        self.values(ramp_steps)
            .into_iter()
            .map(|(value, duration)| {
                let value = if round { value.round() } else { value };
                let duration = Some(duration);
                match varies {
                    Varies::Rate if value >= min_rate => {
                        Ok(Step { rate: Some(value), concurrency, duration })
                    }
                    Varies::Rate => {
                        Err(format!("a step's rate would be {value}; the lowest is {min_rate}/s"))
                    }
                    Varies::Concurrency if value >= 1.0 && value.fract() == 0.0 => {
                        Ok(Step { rate, concurrency: value as usize, duration })
                    }
                    Varies::Concurrency => Err(format!(
                        "a step's concurrency would be {value}; it must be a whole number from 1"
                    )),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_schedule_goes_from_start_to_max() {
        let shape = parse_step("100:100:500/2s").unwrap();
        let values: Vec<f64> = shape.values(0).into_iter().map(|(value, _)| value).collect();
        assert_eq!(values, [100.0, 200.0, 300.0, 400.0, 500.0]);
        assert_eq!(shape.values(0)[0].1, Duration::from_secs(2));
        let down = parse_step("50:-20:10/1s").unwrap();
        let values: Vec<f64> = down.values(0).into_iter().map(|(value, _)| value).collect();
        assert_eq!(values, [50.0, 30.0, 10.0]);
        let uneven = parse_step("1:2:6/1s").unwrap();
        assert_eq!(uneven.values(0).len(), 3);
    }

    #[test]
    fn a_ramp_is_cut_into_equal_steps_with_both_ends() {
        let shape = parse_ramp("100:1000/10s").unwrap();
        let steps = shape.values(10);
        assert_eq!(steps.len(), 10);
        assert_eq!((steps[0].0, steps[9].0, steps[1].0), (100.0, 1000.0, 200.0));
        assert_eq!(steps[0].1, Duration::from_secs(1));
    }

    #[test]
    fn schedules_that_make_no_sense_are_refused() {
        assert!(parse_step("100:0:500/1s").unwrap_err().contains("must not be 0"));
        assert!(parse_step("500:100:100/1s").unwrap_err().contains("never goes from 500 to 100"));
        assert!(parse_step("1:1:5000/1s").unwrap_err().contains("at most 1000"));
        assert!(parse_step("1:1:5/0s").unwrap_err().contains("more than 0"));
        assert!(parse_step("1:1/1s").unwrap_err().starts_with("expected START:STEP:MAX/DURATION"));
        assert!(parse_ramp("a:5/1s").unwrap_err().contains("not a number"));
        let concurrency = parse_step("0:2:4/1s").unwrap();
        assert!(concurrency.steps(Varies::Concurrency, None, 1, 0, 0.001).unwrap_err().contains("from 1"));
        let ramp = parse_ramp("1:32/4s").unwrap().steps(Varies::Concurrency, None, 1, 4, 0.001).unwrap();
        let concurrency: Vec<usize> = ramp.iter().map(|step| step.concurrency).collect();
        assert_eq!(concurrency, [1, 11, 22, 32]);
        let rate = parse_ramp("0:10/1s").unwrap();
        assert!(rate.steps(Varies::Rate, None, 1, 3, 0.001).unwrap_err().contains("lowest"));
    }
}
