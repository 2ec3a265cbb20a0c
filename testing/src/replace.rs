//! Replacing dependencies and restricting entrypoints of a container before it starts.

use nameko_core::container::{ContainerError, ServiceContainer};
use nameko_core::service::Service;

use crate::mocks::{Mock, Mocks, default_mock};

/// Replaces the named dependencies of a container that has not started with their
/// built-in mocks, and returns the mocks: nameko's `replace_dependencies`.
///
/// # Errors
///
/// [`ContainerError::AlreadyStarted`] once started,
/// [`ContainerError::UnknownDependency`] naming the dependencies that exist, and
/// [`ContainerError::Definition`] for a dependency type with no built-in mock (use
/// [`replace_dependency`] with your own).
pub fn replace_dependencies<S: Service>(
    container: &ServiceContainer<S>,
    names: &[&str],
) -> Result<Mocks, ContainerError> {
    let types = container.dependency_types();
    if types.is_empty() && !container.dependency_names().is_empty() {
        return Err(ContainerError::AlreadyStarted);
    }
    let mut mocks = Mocks::default();
    for name in names {
        let Some((field, type_name, type_id)) = types.iter().find(|(n, _, _)| n == name).copied()
        else {
            return Err(ContainerError::UnknownDependency {
                name: (*name).to_owned(),
                known: types
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let mock = default_mock(type_id).ok_or_else(|| {
            ContainerError::Definition(format!(
                "dependency `{field}` ({type_name}) has no built-in mock; use `replace_dependency` with your own"
            ))
        })?;
        container.replace_dependency_boxed(field, mock.provider(field))?;
        mocks.push(field, mock);
    }
    Ok(mocks)
}

/// Replaces one dependency of a container that has not started with `mock`.
///
/// # Errors
///
/// As [`replace_dependencies`], and [`ContainerError::Definition`] when the mock is not
/// of the dependency's type.
pub fn replace_dependency<S: Service>(
    container: &ServiceContainer<S>,
    name: &str,
    mock: impl Mock,
) -> Result<(), ContainerError> {
    let field = container
        .dependency_names()
        .into_iter()
        .find(|n| *n == name)
        .ok_or_else(|| ContainerError::UnknownDependency {
            name: name.to_owned(),
            known: container.dependency_names().join(", "),
        })?;
    container.replace_dependency_boxed(name, mock.provider(field))
}

/// Keeps only the named entrypoints of a container that has not started (timers and
/// handlers you do not want firing): nameko's `restrict_entrypoints`.
///
/// # Errors
///
/// [`ContainerError::AlreadyStarted`] once started; [`ContainerError::UnknownEntrypoint`]
/// naming the entrypoints that exist.
pub fn restrict_entrypoints<S: Service>(
    container: &ServiceContainer<S>,
    names: &[&str],
) -> Result<(), ContainerError> {
    container.restrict_entrypoints(names)
}
