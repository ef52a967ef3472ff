//! Exit codes shared by every command, so scripts and CI can rely on them.

/// Bad input: invalid flags, configuration, constraints, regexes or data.
pub const BAD_INPUT: u8 = 1;
/// Nothing qualified (`select`, `test`): the question had no answer.
pub const NO_MATCH: u8 = 3;

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Exit with this code; the command already said why.
    Quiet(u8),
    /// Print the error and exit with the code.
    Error(u8, anyhow::Error),
}

impl From<driftwatch_registry::Error> for Failure {
    fn from(err: driftwatch_registry::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<driftwatch_manifest::Error> for Failure {
    fn from(err: driftwatch_manifest::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<driftwatch_git::Error> for Failure {
    fn from(err: driftwatch_git::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<driftwatch_engine::Error> for Failure {
    fn from(err: driftwatch_engine::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<driftwatch_cluster::Error> for Failure {
    fn from(err: driftwatch_cluster::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<driftwatch_deploy::Error> for Failure {
    fn from(err: driftwatch_deploy::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<driftwatch_service::Error> for Failure {
    fn from(err: driftwatch_service::Error) -> Self {
        Failure::Error(BAD_INPUT, err.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Error(BAD_INPUT, err)
    }
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;
