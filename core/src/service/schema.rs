//! What a service tells about itself for documents of its messaging (AsyncAPI): the JSON
//! schemas of its methods' parameters and results, which `#[service]` generates with
//! schemars, the events it declares it dispatches, and what each of its entrypoints
//! [describes](crate::extension::describe).

use std::any::TypeId;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::Service;
use crate::config::Settings;
use crate::events::EventDispatcher;
use crate::extension::{DescribeContext, Description};
use crate::method::Method;

/// The JSON schemas of a service's entrypoint methods and of the events it declares it
/// dispatches (`#[service(name = "...", dispatches("order_placed" = OrderPlaced))]`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServiceSchemas {
    /// One per entrypoint method, in the order of the `impl` block.
    pub methods: Vec<MethodSchemas>,
    /// The events the service declares it dispatches.
    pub dispatches: Vec<EventSchema>,
}

impl ServiceSchemas {
    /// No schemas.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a method's schemas.
    #[must_use]
    pub fn method(mut self, method: MethodSchemas) -> Self {
        self.methods.push(method);
        self
    }

    /// Adds an event the service dispatches, with its payload's schema.
    #[must_use]
    pub fn dispatches(mut self, event_type: &'static str, payload: Schema) -> Self {
        self.dispatches.push(EventSchema {
            event_type,
            payload,
        });
        self
    }

    /// The schemas of the method `name`.
    #[must_use]
    pub fn of(&self, name: &str) -> Option<&MethodSchemas> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// The JSON schemas of one method: each parameter's (in order) and its result's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MethodSchemas {
    /// The method's name.
    pub name: &'static str,
    /// Its documentation comment, for the document's descriptions.
    pub docs: &'static str,
    /// Each parameter's schema, in order.
    pub params: Vec<Schema>,
    /// The schema of what a successful call returns (for `Result<T, E>`, of `T`).
    pub result: Schema,
}

impl MethodSchemas {
    /// A method without parameters returning anything.
    #[must_use]
    pub fn new(name: &'static str, docs: &'static str) -> Self {
        Self {
            name,
            docs,
            params: Vec::new(),
            result: untyped(),
        }
    }

    /// Adds the next parameter's schema.
    #[must_use]
    pub fn param(mut self, schema: Schema) -> Self {
        self.params.push(schema);
        self
    }

    /// Sets the result's schema.
    #[must_use]
    pub fn result(mut self, schema: Schema) -> Self {
        self.result = schema;
        self
    }
}

/// An event a service dispatches, with its payload's schema.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EventSchema {
    /// The event type (the routing key on `<service>.events`).
    pub event_type: &'static str,
    /// The payload's schema.
    pub payload: Schema,
}

/// The schema that accepts anything: `{}`.
#[must_use]
pub fn untyped() -> Schema {
    json_schema!({})
}

/// The schema of a method returning nothing: `{"type": "null"}`.
#[must_use]
pub fn null() -> Schema {
    json_schema!({"type": "null"})
}

/// The schema of a type, when it implements [`JsonSchema`], and `{}` (anything) when it
/// does not: what `#[service]` generates for each parameter and result, so that a
/// service's types need not implement `JsonSchema` (their schemas are then untyped).
///
/// The choice is made at compile time by autoref specialization: with [`TypedSchema`] and
/// [`UntypedSchema`] in scope, `(&&SchemaOf::<T>::new()).schema(generator)` picks the
/// typed one whenever `T: JsonSchema`.
///
/// ```
/// use nameko_core::service::schema::{SchemaOf, TypedSchema as _, UntypedSchema as _};
/// use schemars::SchemaGenerator;
///
/// struct Opaque;
///
/// let mut generator = SchemaGenerator::default();
/// let typed = (&&SchemaOf::<u32>::new()).schema(&mut generator);
/// let untyped = (&&SchemaOf::<Opaque>::new()).schema(&mut generator);
/// assert_eq!(typed.get("type"), Some(&serde_json::json!("integer")));
/// assert_eq!(untyped.as_value(), &serde_json::json!({}));
/// ```
#[derive(Debug)]
pub struct SchemaOf<T>(PhantomData<fn() -> T>);

impl<T> SchemaOf<T> {
    /// Stands for `T`.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for SchemaOf<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The schema of a type that implements [`JsonSchema`] (see [`SchemaOf`]).
pub trait TypedSchema {
    /// The type's schema (a reference into the generator's definitions for named types).
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;
}

impl<T: JsonSchema> TypedSchema for &SchemaOf<T> {
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// The schema of any other type: `{}` (see [`SchemaOf`]).
pub trait UntypedSchema {
    /// `{}`.
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;
}

impl<T> UntypedSchema for SchemaOf<T> {
    fn schema(&self, _generator: &mut SchemaGenerator) -> Schema {
        untyped()
    }
}

/// A service as documents of its messaging show it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceDescription {
    /// The service's name.
    pub name: &'static str,
    /// Each entrypoint, in order, with what it describes.
    pub entrypoints: Vec<EntrypointDescription>,
    /// The schemas of its methods and of the events it declares it dispatches.
    pub schemas: ServiceSchemas,
    /// Whether it holds an [`EventDispatcher`]: it may dispatch events on
    /// `<service>.events`, of the types it declares or of any type.
    pub has_event_dispatcher: bool,
}

/// One entrypoint of a [`ServiceDescription`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EntrypointDescription {
    /// Its method.
    pub method: Method,
    /// Its kind (`"rpc"`, `"timer"`, ...).
    pub kind: &'static str,
    /// The `exc_path`s of its expected exceptions.
    pub expected_exceptions: Vec<&'static str>,
    /// What it describes.
    pub description: Description,
}

impl ServiceDescription {
    /// Describes service `S` under `settings`, its schemas made by `generator` (whose
    /// definitions the named types' schemas refer to) and passed through its transforms
    /// (for the JSON Schema draft it was set up for).
    pub fn of<S: Service>(settings: &Settings, generator: &mut SchemaGenerator) -> Self {
        let entrypoints = S::entrypoints()
            .into_iter()
            .map(|def| {
                let ctx = DescribeContext::new(S::name(), &def.method, settings);
                EntrypointDescription {
                    method: def.method,
                    kind: def.entrypoint.kind(),
                    description: def.entrypoint.describe(&ctx),
                    expected_exceptions: def.expected_exceptions,
                }
            })
            .collect();
        let has_event_dispatcher = S::dependencies()
            .iter()
            .any(|d| d.type_id == TypeId::of::<EventDispatcher>());
        let mut schemas = S::schemas(generator);
        let every = schemas
            .methods
            .iter_mut()
            .flat_map(|m| m.params.iter_mut().chain(std::iter::once(&mut m.result)))
            .chain(schemas.dispatches.iter_mut().map(|e| &mut e.payload));
        for schema in every {
            for transform in generator.transforms_mut() {
                transform.transform(schema);
            }
        }
        Self {
            name: S::name(),
            entrypoints,
            schemas,
            has_event_dispatcher,
        }
    }
}
