//! Whisper files to run the tools on, made with the `whisper` crate (whose bytes match
//! whisper.py's, see the whisper crate's differential tests).

use std::path::Path;

use whisper::{AggregationMethod, Allocation, CreateOptions, Retention};

use crate::harness::NOW;

/// Values that are hard to print: NaN, infinities, signed zero, huge, tiny, subnormal, and
/// ones whose shortest repr and `%f`/`%g` forms differ.
pub(crate) const AWKWARD: [f64; 18] = [
    1.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    1e300,
    -1e-300,
    5e-324,
    1e-5,
    123456.789,
    -42.0,
    0.1,
    1e16,
    0.0,
    2.5e-7,
    1e22,
    0.30000000000000004,
    -7.0,
];

/// A file to create: its name, archives, settings and points (written at [`NOW`]).
#[derive(Clone, Debug)]
pub(crate) struct Fixture {
    pub(crate) name: String,
    pub(crate) archives: Vec<(u32, u32)>,
    pub(crate) method: AggregationMethod,
    pub(crate) xff: f64,
    pub(crate) sparse: bool,
    pub(crate) points: Vec<(i64, f64)>,
}

impl Fixture {
    pub(crate) fn new(name: &str, archives: &[(u32, u32)]) -> Fixture {
        Fixture {
            name: name.to_string(),
            archives: archives.to_vec(),
            method: AggregationMethod::Average,
            xff: 0.5,
            sparse: false,
            points: Vec::new(),
        }
    }

    pub(crate) fn method(mut self, m: AggregationMethod) -> Fixture {
        self.method = m;
        self
    }

    pub(crate) fn xff(mut self, x: f64) -> Fixture {
        self.xff = x;
        self
    }

    pub(crate) fn sparse(mut self) -> Fixture {
        self.sparse = true;
        self
    }

    /// One point every `every` seconds going back `count` steps from `NOW - offset`, with
    /// values taken round-robin from `values`.
    pub(crate) fn points(
        mut self,
        offset: i64,
        every: i64,
        count: usize,
        values: &[f64],
    ) -> Fixture {
        for i in 0..count {
            let t = NOW - offset - i as i64 * every;
            self.points.push((t, values[i % values.len()]));
        }
        self
    }

    /// Writes the file into `dir`.
    pub(crate) fn write(&self, dir: &Path) {
        let archives: Vec<Retention> =
            self.archives.iter().map(|&(s, n)| Retention::new(s, n)).collect();
        let mut w = CreateOptions::new()
            .aggregation_method(self.method)
            .x_files_factor(self.xff)
            .allocation(if self.sparse { Allocation::Sparse } else { Allocation::Zeroed })
            .create(dir.join(&self.name), &archives)
            .expect("create fixture");
        if !self.points.is_empty() {
            w.update_many(&self.points, NOW).expect("write fixture points");
        }
    }
}

/// A varied set: every aggregation method, several layouts, xFilesFactors 0, 0.5, 0.7 and 1,
/// awkward values, an empty file, a sparse one, and one whose coarse archive stayed empty.
pub(crate) fn all() -> Vec<Fixture> {
    let mut v = vec![
        Fixture::new("single.wsp", &[(60, 10)]).points(0, 60, 8, &AWKWARD),
        Fixture::new("two.wsp", &[(60, 10), (300, 10)])
            .method(AggregationMethod::Max)
            .xff(0.7)
            .points(30, 60, 9, &AWKWARD[4..])
            .points(700, 300, 6, &[3.25, -1.0, 8.0]),
        Fixture::new("empty.wsp", &[(60, 1440), (300, 2016)]),
        Fixture::new("sparse.wsp", &[(10, 360), (60, 120)]).sparse().xff(0.0).points(
            5,
            10,
            50,
            &[1.0, 2.0, 3.5, -0.25],
        ),
        // xFilesFactor 1 and a gap in every interval: nothing reaches the coarse archive.
        Fixture::new("coarse-empty.wsp", &[(60, 20), (600, 10)]).xff(1.0).points(
            0,
            120,
            10,
            &[7.0, 8.5],
        ),
        Fixture::new("hours.wsp", &[(3600, 48), (86400, 30)])
            .method(AggregationMethod::Sum)
            .xff(0.0)
            .points(0, 3600, 40, &[1.0, 2.0, 1e-3]),
    ];
    for (i, m) in AggregationMethod::ALL.into_iter().enumerate() {
        let values: Vec<f64> = AWKWARD.iter().cycle().skip(i).take(7).copied().collect();
        v.push(
            Fixture::new(&format!("m-{}.wsp", m.name()), &[(10, 30), (60, 30), (300, 20)])
                .method(m)
                .xff([0.0, 0.5, 0.7, 0.25][i % 4])
                .points(3, 10, 25, &values)
                .points(400, 60, 20, &[-3.0, 4.5, 0.0, 1e10]),
        );
    }
    v
}

/// A setup that writes `fixtures` into the directory.
pub(crate) fn setup(fixtures: &[Fixture]) -> impl Fn(&Path) + '_ {
    move |dir: &Path| {
        for f in fixtures {
            f.write(dir);
        }
    }
}
