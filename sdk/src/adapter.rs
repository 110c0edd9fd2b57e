//! The WIT glue: [`Adapter`] implements the traits `wit-bindgen` generates, for any
//! [`Transform`]. `export_plugin!` exports it.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Once;

use crate::bindings::exports::sluice::transform::transform as wit;
use crate::columns::OutputColumn;
use crate::session::Session;
use crate::{Config, Error, Transform};

/// Implements the generated `Guest` trait for a [`Transform`]; named by `export_plugin!`.
pub struct Adapter<T>(PhantomData<fn() -> T>);

/// The `transformer` resource: one [`Session`] behind a `RefCell` (WIT methods take `&self`).
pub struct Instance<T>(RefCell<Session<T>>);

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidConfig(m) => wit::Error::InvalidConfig(m),
            Error::InvalidInput(m) => wit::Error::InvalidInput(m),
            Error::Internal(m) => wit::Error::Internal(m),
        }
    }
}

/// Send panic messages to the host log as well as to stderr (the default hook), so the
/// reason for a trap is visible even where the host does not show the guest's stderr.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            crate::log::log(crate::log::Level::Error, &format!("plugin panicked: {info}"));
            default(info);
        }));
    });
}

impl<T: Transform> Instance<T> {
    fn with<R>(&self, f: impl FnOnce(&mut Session<T>) -> Result<R, Error>) -> Result<R, wit::Error> {
        let mut session = self
            .0
            .try_borrow_mut()
            .map_err(|_| Error::Internal("transformer called re-entrantly".into()))?;
        Ok(f(&mut session)?)
    }
}

impl<T: Transform> wit::Guest for Adapter<T> {
    type Transformer = Instance<T>;

    fn info() -> wit::PluginInfo {
        install_panic_hook();
        wit::PluginInfo {
            name: T::INFO.name.into(),
            version: T::INFO.version.into(),
            description: T::INFO.description.into(),
            stateful: T::INFO.stateful,
        }
    }
}

impl<T: Transform> wit::GuestTransformer for Instance<T> {
    fn open(
        config: Vec<(String, String)>,
        input_schema: wit::Ipc,
        state: Option<Vec<u8>>,
    ) -> Result<wit::Transformer, wit::Error> {
        install_panic_hook();
        let config = Config::new(config);
        let session = Session::<T>::open(&config, &input_schema, state.as_deref())?;
        Ok(wit::Transformer::new(Instance(RefCell::new(session))))
    }

    fn output_schema(&self) -> wit::Ipc {
        // Only a re-entrant call could fail to borrow; the host never makes one.
        self.0
            .try_borrow()
            .map(|s| s.output_schema_ipc().to_vec())
            .unwrap_or_default()
    }

    fn process(&self, batch: wit::Ipc) -> Result<wit::Ipc, wit::Error> {
        self.with(|s| s.process(batch))
    }

    fn finish(&self) -> Result<wit::Ipc, wit::Error> {
        self.with(Session::finish)
    }

    fn checkpoint(&self) -> Result<Vec<u8>, wit::Error> {
        self.with(Session::checkpoint)
    }

    fn column_plan(&self) -> Option<wit::ColumnPlan> {
        // Only a re-entrant call could fail to borrow; the host never makes one.
        let session = self.0.try_borrow().ok()?;
        let plan = session.column_plan()?;
        // Indices fit in u32: a schema with 2^32 columns cannot cross the boundary.
        Some(wit::ColumnPlan {
            reads: plan.reads.iter().map(|&r| r as u32).collect(),
            selects: plan.selects,
            output: plan
                .output
                .iter()
                .map(|c| match *c {
                    OutputColumn::Input(i) => wit::OutputColumn::Input(i as u32),
                    OutputColumn::Computed => wit::OutputColumn::Computed,
                })
                .collect(),
        })
    }

    fn process_columns(&self, batch: wit::Ipc) -> Result<wit::ColumnResult, wit::Error> {
        self.with(|s| s.process_columns(batch)).map(|r| wit::ColumnResult {
            selection: r.selection,
            computed: r.computed,
        })
    }
}

/// Export a [`Transform`] implementation as the plugin's `transform` interface.
///
/// Write it once, at the top level of the plugin crate: `sluice_sdk::export_plugin!(MyType);`.
/// It only emits the component exports when building for wasm, so the same crate can be
/// linked natively (unit tests, benchmarks) next to other plugins.
#[macro_export]
macro_rules! export_plugin {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __SluiceAdapter = $crate::Adapter<$t>;
    $crate::bindings::export!(__SluiceAdapter with_types_in $crate::bindings);
        };
    };
}
