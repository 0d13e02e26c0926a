//! One connection of a load thread, shared by the call loops on it, and
//! replaced when the server closes it (GOAWAY at its `max-connection-age`, a
//! drain behind a proxy): the first loop to notice dials a new one for all,
//! as a gRPC channel reconnects.

use std::{
    cell::{Cell, RefCell},
    task::{Context, Poll, Waker},
};

use super::{
    connection::{self, Connection},
    plan::Plan,
};
use crate::error::ClientError;

/// A connection of the plan, and what its loops know of it.
pub(super) struct Slot {
    /// Which connection of the plan it is (for its address).
    index: usize,
    /// The connection, and how many times it has been replaced.
    current: RefCell<(u64, Connection)>,
    /// Whether a call has succeeded on the current connection. A server that
    /// closes each new connection before answering a call is not redialled
    /// for ever: its loops stop.
    served: Cell<bool>,
    /// No new connection could be made: the loops on it stop.
    dead: Cell<bool>,
    /// Held while dialing, so that one loop dials and the others wait for it.
    dialing: tokio::sync::Mutex<()>,
    /// New connections made for closed ones.
    reconnects: Cell<u64>,
}

impl Slot {
    /// Opens connection `index` of `plan` (with `--wait-for-ready`, retrying until its time).
    pub(super) async fn open(plan: &Plan, index: usize) -> Result<Self, ClientError> {
        let connection = dial(plan, index, plan.wait_until).await?;
        Ok(Self {
            index,
            current: RefCell::new((0, connection)),
            served: Cell::new(false),
            dead: Cell::new(false),
            dialing: tokio::sync::Mutex::new(()),
            reconnects: Cell::new(0),
        })
    }

    /// The connection to call on, and its generation (for [`Self::redial`]).
    pub(super) fn current(&self) -> (u64, Connection) {
        self.current.borrow().clone()
    }

    /// A call on the current connection succeeded.
    pub(super) fn served(&self) {
        self.served.set(true);
    }

    /// New connections made for closed ones so far.
    pub(super) fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }

    /// A connection to use instead of the `lost` generation: the one another
    /// loop has dialled meanwhile, or a new one; none when the slot is dead.
    pub(super) async fn redial(&self, plan: &Plan, lost: u64) -> Option<(u64, Connection)> {
        let _dialing = self.dialing.lock().await;
        let (generation, connection) = self.current();
        if self.dead.get() {
            return None;
        }
        if generation != lost {
            return Some((generation, connection));
        }
        if !self.served.replace(false) {
            self.dead.set(true);
            return None;
        }
        match dial(plan, self.index, None).await {
            Ok(connection) => {
                let renewed = (generation + 1, connection);
                *self.current.borrow_mut() = renewed.clone();
                self.reconnects.set(self.reconnects.get() + 1);
                Some(renewed)
            }
            Err(_) => {
                self.dead.set(true);
                None
            }
        }
    }
}

/// Connection `index` of `plan`, to the address it goes to.
async fn dial(
    plan: &Plan,
    index: usize,
    wait_until: Option<tokio::time::Instant>,
) -> Result<Connection, ClientError> {
    let server = index % plan.addrs.len();
    connection::connect(
        &plan.addrs[server],
        &plan.targets[server],
        plan.tls.as_ref(),
        plan.connect_timeout,
        wait_until,
    )
    .await
}

/// Whether `connection` is closed for good (not merely at its stream limit).
pub(super) fn connection_lost(connection: &mut Connection) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(connection.send.poll_ready(&mut cx), Poll::Ready(Err(_)))
}
