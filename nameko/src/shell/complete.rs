//! Tab completion: the members of `n`, service names after `n.rpc.` (from a
//! [`ServiceDirectory`] and from the services this session called), method names of a
//! service once a call showed them, `call_async` and `result`, and the session's names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::value::{Builtin, NAMESPACE_MEMBERS};

/// Where the names of the cluster's services come from: the broker's `rpc-<service>`
/// queues, listed by whatever can list them (the RabbitMQ management API, the in-process
/// broker).
///
/// ```
/// use nameko::shell::{DirectoryError, ServiceDirectory, services_from_queues};
///
/// #[derive(Debug)]
/// struct Fixed;
///
/// #[async_trait::async_trait]
/// impl ServiceDirectory for Fixed {
///     async fn services(&self) -> Result<Vec<String>, DirectoryError> {
///         Ok(services_from_queues(["rpc-calculator", "rpc.reply-standalone_rpc_proxy-1"]))
///     }
/// }
/// ```
#[async_trait]
pub trait ServiceDirectory: Send + Sync + fmt::Debug + 'static {
    /// The names of the services listening for RPC calls.
    ///
    /// # Errors
    ///
    /// When the listing cannot be had (the shell then completes the services it has
    /// called).
    async fn services(&self) -> Result<Vec<String>, DirectoryError>;
}

/// Why a [`ServiceDirectory`] could not list the services.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The source of the listing failed.
    #[error("cannot list the services: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The service names among queue names: `rpc-calculator` is the queue of `calculator`
/// (reply queues, `rpc.reply-...`, and event queues are not services). Sorted, without
/// duplicates.
///
/// ```
/// use nameko::shell::services_from_queues;
///
/// assert_eq!(
///     services_from_queues(["rpc-b", "evt-a-x--b.h", "rpc-a", "rpc.reply-x-1"]),
///     ["a", "b"]
/// );
/// ```
pub fn services_from_queues<I, S>(queues: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names: BTreeSet<String> = queues
        .into_iter()
        .filter_map(|q| q.as_ref().strip_prefix("rpc-").map(str::to_owned))
        .filter(|name| !name.is_empty())
        .collect();
    names.into_iter().collect()
}

/// The services of an in-process broker (`memory://`).
#[derive(Debug, Clone)]
pub struct MemoryDirectory {
    broker: nameko_memory::MemoryBroker,
}

impl MemoryDirectory {
    /// The services of `broker`.
    #[must_use]
    pub fn new(broker: nameko_memory::MemoryBroker) -> Self {
        Self { broker }
    }
}

#[async_trait]
impl ServiceDirectory for MemoryDirectory {
    async fn services(&self) -> Result<Vec<String>, DirectoryError> {
        Ok(services_from_queues(
            self.broker.queues().into_iter().map(|q| q.name),
        ))
    }
}

/// The services of a RabbitMQ broker, from its management API (the `rpc-*` queues of
/// the broker's virtual host). Without the management plugin, listing fails and the
/// shell completes the services it has called.
#[derive(Debug, Clone)]
pub struct ManagementDirectory {
    client: nameko_amqp::management::ManagementClient,
    vhost: String,
}

impl ManagementDirectory {
    /// The services of `broker`, through its management API on the default port (15672),
    /// with the broker's credentials.
    ///
    /// # Errors
    ///
    /// When no management address can be made from the broker's URI.
    pub fn for_broker(
        broker: &nameko_amqp::AmqpUri,
    ) -> Result<Self, nameko_amqp::management::ManagementError> {
        Ok(Self {
            client: nameko_amqp::management::ManagementClient::for_broker(broker)?,
            vhost: broker.vhost().to_owned(),
        })
    }
}

#[async_trait]
impl ServiceDirectory for ManagementDirectory {
    async fn services(&self) -> Result<Vec<String>, DirectoryError> {
        let queues = self
            .client
            .list_queues(&self.vhost)
            .await
            .map_err(|e| DirectoryError::Unavailable(Box::new(e)))?;
        Ok(services_from_queues(queues.into_iter().map(|q| q.name)))
    }
}

/// What the session has learnt: for completion.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// From the directory.
    listed: BTreeSet<String>,
    /// Called in this session.
    called: BTreeSet<String>,
    methods: BTreeMap<String, BTreeSet<String>>,
    variables: BTreeSet<String>,
    handles: BTreeSet<String>,
}

/// [`Known`], shared by the evaluator and the line editor's thread.
pub(crate) type SharedKnown = Arc<Mutex<Known>>;

pub(crate) fn lock(known: &SharedKnown) -> std::sync::MutexGuard<'_, Known> {
    known.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Known {
    pub(crate) fn set_listed(&mut self, services: Vec<String>) {
        self.listed = services.into_iter().collect();
    }

    pub(crate) fn service_seen(&mut self, service: &str) {
        self.called.insert(service.to_owned());
    }

    pub(crate) fn method_seen(&mut self, service: &str, method: &str) {
        self.service_seen(service);
        self.methods
            .entry(service.to_owned())
            .or_default()
            .insert(method.to_owned());
    }

    pub(crate) fn variable(&mut self, name: &str, is_handle: bool) {
        self.variables.insert(name.to_owned());
        if is_handle {
            self.handles.insert(name.to_owned());
        } else {
            self.handles.remove(name);
        }
    }

    /// The services known by any means.
    pub(crate) fn services(&self) -> BTreeSet<&str> {
        self.listed
            .iter()
            .chain(&self.called)
            .map(String::as_str)
            .collect()
    }
}

/// What the text before the cursor is, as far as completion can tell.
#[derive(Debug, PartialEq)]
enum Kind {
    Namespace,
    Rpc,
    Service(String),
    Method,
    Handle,
}

/// The completions of `line` at byte offset `pos`: where the replaced text starts, and
/// the candidates, sorted.
pub(crate) fn complete(known: &Known, line: &str, pos: usize) -> (usize, Vec<String>) {
    let pos = floor_boundary(line, pos);
    let before = &line[..pos];
    let word_len = before
        .chars()
        .rev()
        .take_while(|c| *c == '_' || c.is_alphanumeric())
        .map(char::len_utf8)
        .sum::<usize>();
    let start = pos - word_len;
    let word = &before[start..];
    let head = &before[..start];

    // n.rpc["calc|  or  n.rpc['calc|
    if let Some((chain, quote, partial)) = open_subscript(before) {
        if resolve(known, chain) == Some(Kind::Rpc) {
            let start = pos - partial.len();
            let candidates = known
                .services()
                .into_iter()
                .filter(|s| s.starts_with(partial))
                .map(|s| format!("{s}{quote}]"))
                .collect();
            return (start, candidates);
        }
        return (pos, Vec::new());
    }

    let candidates: Vec<String> = if let Some(chain) = head.strip_suffix('.') {
        match resolve(known, chain) {
            Some(Kind::Namespace) => NAMESPACE_MEMBERS.iter().map(|m| (*m).to_owned()).collect(),
            Some(Kind::Rpc) => known.services().into_iter().map(str::to_owned).collect(),
            Some(Kind::Service(service)) => known
                .methods
                .get(&service)
                .map(|m| m.iter().cloned().collect())
                .unwrap_or_default(),
            Some(Kind::Method) => vec!["call_async".to_owned()],
            Some(Kind::Handle) => vec!["result".to_owned()],
            None => Vec::new(),
        }
    } else if head
        .chars()
        .next_back()
        .is_some_and(|c| c == '_' || c.is_alphanumeric() || c == '\'' || c == '"')
    {
        Vec::new()
    } else {
        let mut names: Vec<String> = known.variables.iter().cloned().collect();
        names.push("n".to_owned());
        names.extend(Builtin::GLOBALS.iter().map(|b| (*b).to_owned()));
        names.extend(["True", "False", "None"].map(str::to_owned));
        names
    };
    let mut candidates: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(word))
        .collect();
    candidates.sort();
    candidates.dedup();
    (start, candidates)
}

/// For text ending in `<chain>["partial` (or `'`): the chain, the quote and the partial.
fn open_subscript(before: &str) -> Option<(&str, char, &str)> {
    let quote_at = before.rfind(['"', '\''])?;
    let partial = &before[quote_at + 1..];
    if !partial
        .chars()
        .all(|c| c == '_' || c == '-' || c.is_alphanumeric())
    {
        return None;
    }
    let quote = before[quote_at..].chars().next()?;
    let chain = before[..quote_at].strip_suffix('[')?;
    Some((chain, quote, partial))
}

/// What the expression at the end of `text` is: `n`, `n.rpc`, `n.rpc.svc`,
/// `n.rpc["svc"]`, `n.rpc.svc.method`, or a variable holding a call handle.
fn resolve(known: &Known, text: &str) -> Option<Kind> {
    let segments = chain(text)?;
    let (root, rest) = segments.split_first()?;
    let mut kind = if root == "n" && !known.variables.contains("n") {
        Kind::Namespace
    } else if known.handles.contains(root.as_str()) {
        Kind::Handle
    } else {
        return None;
    };
    for segment in rest {
        kind = match (kind, segment.as_str()) {
            (Kind::Namespace, "rpc") => Kind::Rpc,
            (Kind::Rpc, service) => Kind::Service(service.to_owned()),
            (Kind::Service(_), _) => Kind::Method,
            _ => return None,
        };
    }
    Some(kind)
}

/// The names of a chain at the end of `text`: `x = n.rpc["svc"].m` gives
/// `["n", "rpc", "svc", "m"]`.
fn chain(text: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        if let Some(inner) = rest.strip_suffix(']') {
            let quote = inner.chars().next_back()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let inner = &inner[..inner.len() - 1];
            let open = inner.rfind(quote)?;
            let name = &inner[open + 1..];
            rest = inner[..open].strip_suffix('[')?;
            segments.push(name.to_owned());
            // A subscript follows its object directly.
            continue;
        }
        {
            let len = rest
                .chars()
                .rev()
                .take_while(|c| *c == '_' || c.is_alphanumeric())
                .map(char::len_utf8)
                .sum::<usize>();
            if len == 0 {
                return None;
            }
            segments.push(rest[rest.len() - len..].to_owned());
            rest = &rest[..rest.len() - len];
        }
        match rest.strip_suffix('.') {
            Some(shorter) => rest = shorter,
            None => break,
        }
    }
    segments.reverse();
    Some(segments)
}

fn floor_boundary(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    (0..=pos)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        let mut known = Known::default();
        known.set_listed(vec!["calculator".into(), "service_x".into()]);
        known.method_seen("calculator", "add");
        known.method_seen("calculator", "divide");
        known.service_seen("user_service");
        known.variable("reply", true);
        known.variable("result", false);
        known
    }

    fn at_end(line: &str) -> (usize, Vec<String>) {
        complete(&known(), line, line.len())
    }

    #[test]
    fn members_services_methods_and_names() {
        assert_eq!(
            at_end("n."),
            (
                2,
                NAMESPACE_MEMBERS
                    .iter()
                    .map(|m| (*m).to_owned())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            )
        );
        assert_eq!(at_end("n.r"), (2, vec!["rpc".to_owned()]));
        assert_eq!(
            at_end("x = n.rpc."),
            (
                10,
                vec![
                    "calculator".into(),
                    "service_x".into(),
                    "user_service".into()
                ]
            )
        );
        assert_eq!(at_end("n.rpc.calc"), (6, vec!["calculator".into()]));
        assert_eq!(at_end("n.rpc.calculator.d"), (17, vec!["divide".into()]));
        assert_eq!(at_end("n.rpc['calculator'].a"), (20, vec!["add".into()]));
        assert_eq!(at_end("n.rpc[\"ser"), (7, vec!["service_x\"]".into()]));
        assert_eq!(
            at_end("n.rpc.calculator.add."),
            (21, vec!["call_async".into()])
        );
        assert_eq!(at_end("reply."), (6, vec!["result".into()]));
        assert_eq!(at_end("result."), (7, vec![]));
        assert_eq!(
            at_end("f(re"),
            (2, vec!["reply".into(), "repr".into(), "result".into()])
        );
        assert_eq!(at_end("'text"), (1, vec![]));
        assert_eq!(
            complete(&known(), "n.rpc.calc(", 10),
            (6, vec!["calculator".into()])
        );
    }

    #[test]
    fn never_panics_on_odd_positions() {
        let known = known();
        for line in [
            "é.",
            "n.rpc[\"é",
            "]]",
            "['']",
            "n.rpc[\"\"].",
            "x[0].",
            ".",
        ] {
            for pos in 0..=line.len() + 1 {
                let _ = complete(&known, line, pos);
            }
        }
    }
}
