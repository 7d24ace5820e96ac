//! How jitctl fails: every error becomes one [`Failure`], and each failure one documented exit
//! code.

use jitd::client::Error;

/// What `jitctl policy check` and a refused `jitctl reload` exit with: the policy has errors.
pub const EXIT_POLICY_INVALID: u8 = 10;

pub const EXIT_CODES: &str = "EXIT CODES:
  0  success (explain: you may request it)
  1  other failure (explain: you may not request it)
  2  usage error (bad flag, bad duration)
  3  the policy refuses the request
  4  not allowed for this caller
  5  jitd is not reachable on the bus
  6  invalid argument
  7  no such grant or privilege
  8  jitd cannot grant right now (state not writable, database locked)
  9  audit verify found a broken link in the audit trail
  10  the policy has errors (policy check; reload: the daemon kept its policy)
  12  the request waits for approval (nothing granted yet; `jitctl wait ID`)
  13  the request was denied, expired, cancelled or withdrawn

ENVIRONMENT:
  JITD_BUS_ADDRESS  D-Bus address to use instead of the system bus (tests)";

/// Why a command failed, with the exit code it maps to. The one place errors become codes.
#[derive(Debug)]
pub enum Failure {
    Bus(Error),
    Unreachable(String),
    Usage(String),
    Other(String),
    /// The policy has errors (what they are is already said).
    Invalid(String),
    /// The audit chain is broken; what was found is already on stdout.
    Broken,
    /// `doctor` found a failing check; its report is already on stdout.
    Doctor,
    /// The answer is no (`explain`); the answer itself is already on stdout.
    No,
    /// The request waits for approval; what to do next is already on stdout.
    Pending,
    /// The request ended without a grant; what became of it is already on stdout.
    NotGranted,
}

impl Failure {
    pub(crate) fn code(&self) -> u8 {
        match self {
            Self::Bus(Error::PolicyDenied(_)) => 3,
            Self::Bus(Error::NotAllowed(_)) => 4,
            Self::Unreachable(_) => 5,
            Self::Bus(Error::InvalidArgument(_)) => 6,
            Self::Bus(Error::NotFound(_)) => 7,
            Self::Bus(Error::Unavailable(_)) => 8,
            Self::Usage(_) => 2,
            Self::Bus(Error::ZBus(_)) | Self::Other(_) | Self::No | Self::Doctor => 1,
            Self::Broken => 9,
            Self::Invalid(_) => EXIT_POLICY_INVALID,
            Self::Pending => 12,
            Self::NotGranted => 13,
        }
    }

    /// Whether what went wrong was already said in full (no error line or document follows).
    pub(crate) fn said(&self) -> bool {
        matches!(
            self,
            Self::Broken | Self::No | Self::Doctor | Self::Pending | Self::NotGranted
        )
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Bus(e) => e.short_name(),
            Self::Unreachable(_) => "Unreachable",
            Self::Usage(_) => "Usage",
            Self::Other(_) => "Failed",
            Self::Invalid(_) => "PolicyInvalid",
            Self::Broken => "ChainBroken",
            Self::No => "No",
            Self::Doctor => "ChecksFailed",
            Self::Pending => "Pending",
            Self::NotGranted => "NotGranted",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Self::Bus(e) => e.message(),
            Self::Unreachable(m) | Self::Usage(m) | Self::Other(m) | Self::Invalid(m) => m.clone(),
            Self::Broken => "the audit trail is broken".into(),
            Self::No => "the answer is no".into(),
            Self::Doctor => "some checks failed".into(),
            Self::Pending => "the request waits for approval".into(),
            Self::NotGranted => "the request was not granted".into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            // The name has no owner, or the daemon vanished mid-call.
            Error::ZBus(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                    || name.as_str() == "org.freedesktop.DBus.Error.NoReply"
                    || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
            {
                Self::Unreachable(unreachable_message())
            }
            Error::ZBus(zbus::Error::InputOutput(_)) => Self::Unreachable(unreachable_message()),
            other => Self::Bus(other),
        }
    }
}

fn unreachable_message() -> String {
    "jitd is not running or not reachable on the bus: check `systemctl status jitd`".into()
}
