//! The one module of the RDMA backend with unsafe code: registered memory,
//! posting work requests, reaping and arming the completion queue, and the
//! credit word a peer writes into with RDMA WRITE. Everything above it
//! (`super`) is safe code over these calls. Verbs come from `sideway`
//! (rdma-core's libibverbs/librdmacm, loaded at run time through
//! `rdma-mummy-sys`, so a node without rdma-core still starts).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use sideway::ibverbs::completion::{
    BasicCompletionQueue, CompletionChannel, CompletionQueue, GenericCompletionQueue,
};
use sideway::ibverbs::device_context::DeviceContext;
use sideway::ibverbs::memory_region::MemoryRegion;
use sideway::ibverbs::protection_domain::ProtectionDomain;
use sideway::ibverbs::queue_pair::{
    BasicQueuePair, PostSendGuard, QueuePair, QueuePairAttribute, SetInlineData,
    SetScatterGatherEntry, WorkRequestFlags,
};
use sideway::ibverbs::AccessFlags;

use super::RdmaError;

/// One work completion, copied out of the CQ.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub wr_id: u64,
    /// `IBV_WC_SUCCESS` is 0.
    pub status: u32,
    pub byte_len: u32,
}

/// A device's shared resources: protection domain, one completion queue for
/// every connection on it, and the completion channel that wakes an idle loop.
pub struct Device {
    // Drop order: CQ before its channel, PD and context last.
    cq: Arc<BasicCompletionQueue>,
    channel: Arc<CompletionChannel>,
    pd: Arc<ProtectionDomain>,
    ctx: Arc<DeviceContext>,
    armed: bool,
}

impl Device {
    pub fn open(ctx: Arc<DeviceContext>, cqe: u32) -> Result<Self, RdmaError> {
        let pd = ctx
            .alloc_pd()
            .map_err(|e| RdmaError::verbs("ibv_alloc_pd", e))?;
        let channel = ctx
            .create_comp_channel()
            .map_err(|e| RdmaError::verbs("ibv_create_comp_channel", e))?;
        channel
            .set_nonblocking(true)
            .map_err(|e| RdmaError::verbs("completion channel O_NONBLOCK", e))?;
        let cq = ctx
            .create_cq_builder()
            .setup_cqe(cqe)
            .setup_comp_channel(&channel, 0)
            .build()
            .map_err(|e| RdmaError::verbs("ibv_create_cq", e))?;
        Ok(Self {
            cq,
            channel,
            pd,
            ctx,
            armed: false,
        })
    }

    pub fn context(&self) -> &Arc<DeviceContext> {
        &self.ctx
    }

    /// Appends what completed to `out`; returns how many.
    pub fn poll(&self, out: &mut Vec<Completion>) -> Result<usize, RdmaError> {
        match self.cq.start_poll() {
            Ok(poller) => {
                let before = out.len();
                for wc in poller {
                    out.push(Completion {
                        wr_id: wc.wr_id(),
                        status: wc.status(),
                        byte_len: wc.byte_len(),
                    });
                }
                Ok(out.len() - before)
            }
            Err(sideway::ibverbs::completion::PollCompletionQueueError::CompletionQueueEmpty) => {
                Ok(0)
            }
            Err(e) => Err(RdmaError::verbs("ibv_poll_cq", e)),
        }
    }

    /// Asks for a channel event on the next completion (before sleeping; the
    /// caller polls once more after arming so nothing slips between).
    pub fn arm(&mut self) -> Result<(), RdmaError> {
        if self.armed {
            return Ok(());
        }
        // SAFETY: the CQ pointer is valid while `self.cq` lives; req_notify_cq
        // only writes the CQ's doorbell.
        let rc = unsafe { rdma_mummy_sys::ibv_req_notify_cq(self.cq.cq().as_ptr(), 0) };
        if rc != 0 {
            return Err(RdmaError::verbs(
                "ibv_req_notify_cq",
                io::Error::from_raw_os_error(rc),
            ));
        }
        self.armed = true;
        Ok(())
    }

    /// Consumes channel events after a wake-up (non-blocking).
    pub fn drain_channel(&mut self) {
        loop {
            let mut cq = std::ptr::null_mut();
            let mut ctx = std::ptr::null_mut();
            // SAFETY: the channel is valid and non-blocking; on success the
            // event is acknowledged at once, as ibv_destroy_cq requires.
            let rc = unsafe {
                rdma_mummy_sys::ibv_get_cq_event(
                    self.channel.comp_channel().as_ptr(),
                    &mut cq,
                    &mut ctx,
                )
            };
            if rc != 0 {
                return;
            }
            // SAFETY: `cq` came from the event above.
            unsafe { rdma_mummy_sys::ibv_ack_cq_events(cq, 1) };
            self.armed = false;
        }
    }

    pub fn channel_fd(&self) -> RawFd {
        self.channel.as_raw_fd()
    }
}

/// Heap memory registered with the device. The region is dropped (deregistered)
/// before the memory it covers.
pub struct Registered {
    mr: Arc<MemoryRegion>,
    mem: Box<[u8]>,
}

impl Registered {
    fn new(pd: &Arc<ProtectionDomain>, len: usize, access: AccessFlags) -> Result<Self, RdmaError> {
        let mem = vec![0u8; len].into_boxed_slice();
        // SAFETY: `mem` is a live heap allocation of `len` bytes that does not
        // move (a Box's heap memory stays put when the Box moves) and is freed
        // only after `mr` (field order) is deregistered.
        let mr = unsafe { pd.reg_mr(mem.as_ptr() as usize, len, access) }
            .map_err(|e| RdmaError::verbs("ibv_reg_mr", e))?;
        Ok(Self { mr, mem })
    }
    fn addr(&self, offset: usize) -> u64 {
        self.mem.as_ptr() as u64 + offset as u64
    }
}

/// Resources of one connection: its queue pair, receive and send slots, and
/// the 8-byte credit word the peer writes.
pub struct Conn {
    // Drop order: the QP first, then the memory its requests pointed at.
    qp: BasicQueuePair,
    recv: Registered,
    send: Registered,
    credit: Registered,
    slot: usize,
    max_inline: usize,
}

/// Where to write a peer's credit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteWord {
    pub addr: u64,
    pub rkey: u32,
}

impl Conn {
    pub fn new(
        dev: &Device,
        recv_slots: usize,
        send_slots: usize,
        slot: usize,
        max_inline: usize,
    ) -> Result<Self, RdmaError> {
        let cq = GenericCompletionQueue::from(dev.cq.clone());
        let qp = dev
            .pd
            .create_qp_builder()
            .setup_max_send_wr(send_slots as u32 + 8)
            .setup_max_recv_wr(recv_slots as u32)
            .setup_max_send_sge(1)
            .setup_max_recv_sge(1)
            .setup_max_inline_data(max_inline as u32)
            .setup_send_cq(cq.clone())
            .setup_recv_cq(cq)
            .build()
            .map_err(|e| RdmaError::verbs("ibv_create_qp", e))?;
        Ok(Self {
            qp,
            recv: Registered::new(&dev.pd, recv_slots * slot, AccessFlags::LocalWrite)?,
            send: Registered::new(&dev.pd, send_slots * slot, AccessFlags::LocalWrite)?,
            credit: Registered::new(
                &dev.pd,
                8,
                AccessFlags::LocalWrite | AccessFlags::RemoteWrite,
            )?,
            slot,
            max_inline,
        })
    }

    pub fn qp_number(&self) -> u32 {
        self.qp.qp_number()
    }

    pub fn modify(&mut self, attr: &QueuePairAttribute) -> Result<(), RdmaError> {
        self.qp
            .modify(attr)
            .map_err(|e| RdmaError::verbs("ibv_modify_qp", e))
    }

    pub fn post_recv(&mut self, slot: usize, wr_id: u64) -> Result<(), RdmaError> {
        let (addr, lkey, len) = (
            self.recv.addr(slot * self.slot),
            self.recv.mr.lkey(),
            self.slot,
        );
        let mut guard = self.qp.start_post_recv();
        let wr = guard.construct_wr(wr_id);
        // SAFETY: the slot lies inside the registered receive region, which
        // outlives the QP; the slot is not read until its completion arrives.
        unsafe { wr.setup_sge(lkey, addr, len as u32) };
        guard
            .post()
            .map_err(|e| RdmaError::verbs("ibv_post_recv", e))
    }

    /// What a completed receive wrote into `slot`.
    pub fn received(&self, slot: usize, len: usize) -> &[u8] {
        let at = slot * self.slot;
        &self.recv.mem[at..at + len.min(self.slot)]
    }

    /// A free send slot, to fill before [`Conn::post_send`].
    pub fn send_slot(&mut self, slot: usize) -> &mut [u8] {
        let at = slot * self.slot;
        &mut self.send.mem[at..at + self.slot]
    }

    /// Whether a send of `len` bytes goes inline (its slot is free again as
    /// soon as it is posted).
    pub fn inline(&self, len: usize) -> bool {
        len <= self.max_inline
    }

    /// Posts a SEND of the first `len` bytes of send slot `slot`, inline when
    /// [`Conn::inline`] says so.
    pub fn post_send(&mut self, slot: usize, len: usize, wr_id: u64) -> Result<(), RdmaError> {
        let at = slot * self.slot;
        let inline = self.inline(len);
        let (addr, lkey) = (self.send.addr(at), self.send.mr.lkey());
        let mut guard = self.qp.start_post_send();
        let wr = guard
            .construct_wr(wr_id, WorkRequestFlags::Signaled)
            .setup_send();
        if inline {
            wr.setup_inline_data(&self.send.mem[at..at + len]);
        } else {
            // SAFETY: the slot is inside the registered send region, which
            // outlives the QP, and is not written again until this send's
            // completion frees it.
            unsafe { wr.setup_sge(lkey, addr, len as u32) };
        }
        guard
            .post()
            .map_err(|e| RdmaError::verbs("ibv_post_send", e))
    }

    /// RDMA WRITEs `value` (inline) into the peer's credit word.
    pub fn post_credit(&mut self, to: RemoteWord, value: u64, wr_id: u64) -> Result<(), RdmaError> {
        let mut guard = self.qp.start_post_send();
        guard
            .construct_wr(wr_id, WorkRequestFlags::Signaled)
            .setup_write(to.rkey, to.addr)
            .setup_inline_data(&value.to_le_bytes());
        guard
            .post()
            .map_err(|e| RdmaError::verbs("ibv_post_send (RDMA WRITE)", e))
    }

    /// Our credit word, for the peer (sent in the hello).
    pub fn credit_word(&self) -> RemoteWord {
        RemoteWord {
            addr: self.credit.addr(0),
            rkey: self.credit.mr.rkey(),
        }
    }

    /// The value the peer last wrote into our credit word.
    pub fn read_credit(&self) -> u64 {
        let p = self.credit.mem.as_ptr() as *const [u8; 8];
        // SAFETY: `p` points at the 8 bytes of our own live allocation
        // (alignment 1 suffices for [u8; 8]); the NIC writes them on the
        // peer's RDMA WRITE, so the read must be volatile to see it.
        u64::from_le_bytes(unsafe { std::ptr::read_volatile(p) })
    }
}
