//! The seL4 backend over the model of seL4, driven as the seL4 loop
//! drives the server: requests encoded into message words with a caller's
//! badge, VSpaces made by the root task arriving with registrations, the
//! invariant (with the model's part) checked after every message.
#![allow(dead_code, reason = "each test binary uses its own part")]

use memserver::model_rig::{ModelBackend, Rig};
use memserver_core::dispatch::{CapUse, Dispatcher};
use memserver_core::harness::ADMIN;
use memserver_core::host_backend::HostBackend;
use memserver_core::ids::{Badge, SpaceId};
use memserver_core::invariant;
use memserver_protocol::words::Words;
use memserver_protocol::{Quota, Registration, Reply, Request};
use sel4_model::{Model, ObjectId};

pub const MIB: u64 = 1 << 20;
pub const KIB: u64 = 1 << 10;

/// The server over the model, and the root task beside it.
pub struct System {
    pub d: Box<Dispatcher<ModelBackend>>,
    pub rig: Rig,
}

impl System {
    /// A started server for `cpus` CPUs.
    pub fn new(cpus: usize) -> System {
        Self::checked(ModelBackend::started(cpus))
    }

    /// A started server for `cpus` CPUs given two untypeds of 2^`bits`
    /// bytes.
    pub fn with_memory(cpus: usize, bits: u64) -> System {
        Self::checked(memserver::model_rig::started_with(cpus, bits))
    }

    fn checked((d, rig): (Box<Dispatcher<ModelBackend>>, Rig)) -> System {
        let s = System { d, rig };
        s.check();
        s
    }

    /// The invariant holds.
    #[track_caller]
    pub fn check(&self) {
        if let Err(e) = invariant::check(self.d.server()) {
            panic!("invariant broken: {e}");
        }
    }

    /// Sends `request` from `caller`, checks the invariant, and returns the
    /// reply.
    #[track_caller]
    pub fn send(&mut self, caller: Badge, request: Request) -> Reply {
        let (reply, _) = self.d.handle(caller, &Words::encode(&request).unwrap(), None);
        self.check();
        reply
    }

    /// Sends `request` from `caller`, which must succeed.
    #[track_caller]
    pub fn ok(&mut self, caller: Badge, request: Request) -> Reply {
        let reply = self.send(caller, request);
        assert!(!matches!(reply, Reply::Error(_)), "{request:?} from {caller:?}: {reply:?}");
        reply
    }

    /// A vmalloc of `size` bytes by `client`: the area's address.
    #[track_caller]
    pub fn vmalloc(&mut self, client: Badge, size: u64, large_pages: bool) -> u64 {
        match self.ok(client, Request::Vmalloc { size, large_pages }) {
            Reply::Address(addr) => addr,
            other => panic!("vmalloc: {other:?}"),
        }
    }

    /// A registration of a new VSpace the root task makes for `client`:
    /// the reply, and what became of the capability.
    pub fn try_register(&mut self, client: Badge, quota: Quota) -> (Reply, CapUse) {
        let vspace = ModelBackend::new_vspace(&mut self.d, &mut self.rig);
        let request = Request::Register { client: client.0, quota };
        let (reply, cap_use) = self.d.handle(ADMIN, &Words::encode(&request).unwrap(), Some(vspace));
        if cap_use == CapUse::Unused {
            ModelBackend::not_kept(&mut self.d, &mut self.rig, vspace);
        }
        self.check();
        (reply, cap_use)
    }

    /// Registers a new VSpace for `client` with a quota of `bytes`.
    #[track_caller]
    pub fn register(&mut self, client: Badge, bytes: u64) -> Registration {
        match self.try_register(client, Quota::bytes(bytes)) {
            (Reply::Space(registration), CapUse::Kept) => registration,
            other => panic!("register: {other:?}"),
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        self.d.server().region().backend().kernel().inner()
    }

    /// The model, to act on it as a client program.
    pub fn model_mut(&mut self) -> &mut Model {
        self.d.rig_backend().kernel_mut().inner_mut()
    }

    /// The VSpace (PML4 object) of registered space `space`.
    pub fn vspace(&self, space: u16) -> ObjectId {
        let id = SpaceId::new(space.into()).unwrap();
        let cptr = self.d.server().region().vspace(id).expect("registered");
        self.model().object_of(cptr).expect("a VSpace")
    }

    /// Untyped bytes and slots the server does not use (the paging
    /// structures a purge kept counted as spare).
    pub fn unused(&self) -> (u64, u64) {
        let region = self.d.server().region();
        ModelBackend::sparing(region.backend().held(), region.kept_structures())
    }
}
