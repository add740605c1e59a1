//! Batched requests (`BATCH_LABEL` messages): the operations of a batch are
//! made in order, each as the request alone would be, with one reply each;
//! a bad operation fails alone with its typed error and changes nothing,
//! the others go on; a batch that cannot be decoded, or from a caller
//! with no space, is refused whole. The invariant is checked after every
//! batch.

mod common;

use common::dispatcher::send;
use common::{check, snapshot, ADMIN};
use memserver_core::backend::OpKind;
use memserver_core::dispatch::Dispatcher;
use memserver_core::layout::PAGE_SIZE;
use memserver_core::sim::Sim;
use memserver_core::Badge;
use memserver_protocol::batch::{Batch, BatchReply, MAX_BATCH_OPS};
use memserver_protocol::{BatchWords, ErrorCode, Protection, Realloc, Reply, Request, VmallocOptions};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);

fn three_spaces() -> Box<Dispatcher<Sim>> {
    common::dispatcher::three_spaces(A, B)
}

/// Sends `ops` from `caller` as one batch; the replies, or the refusal.
fn batch(d: &mut Dispatcher<Sim>, caller: Badge, ops: &[Request]) -> Result<Vec<Reply>, ErrorCode> {
    let mut batch = Batch::new();
    for &op in ops {
        batch.push(op).expect("room in the batch");
    }
    let answer = d.handle_batch(caller, &batch.words(), |d, op| d.batch_op(caller, op));
    check(d.server());
    answer.map(|a: BatchReply| a.replies.to_vec())
}

fn address(reply: &Reply) -> u64 {
    match reply {
        Reply::Address(addr) => *addr,
        other => panic!("not an address: {other:?}"),
    }
}

/// Whether `addr` is mapped in every registered space.
fn mapped_everywhere(d: &Dispatcher<Sim>, addr: u64) -> bool {
    let region = d.server().region();
    region.space_ids().all(|id| region.backend().translate(region.vspace(id).expect("registered"), addr).is_some())
}

const ONE_PAGE: Request = Request::Vmalloc { size: PAGE_SIZE, large_pages: false };

#[test]
fn sixty_four_vmallocs_in_a_batch_make_what_sixty_four_requests_make() {
    let (mut batched, mut single) = (three_spaces(), three_spaces());
    let (before_batched, before_single) = (batched.server().region().op_counts(), single.server().region().op_counts());
    let replies = batch(&mut batched, A, &[ONE_PAGE; MAX_BATCH_OPS]).expect("a batch of a registered client");
    let singles: Vec<Reply> = (0..MAX_BATCH_OPS).map(|_| send(&mut single, A, ONE_PAGE, None)).collect();
    assert_eq!(replies, singles, "the same addresses, in order");
    assert!(replies.iter().all(|r| mapped_everywhere(&batched, address(r))));
    assert_eq!(snapshot(batched.server()), snapshot(single.server()));
    let (ops_batched, ops_single) = (
        batched.server().region().op_counts().since(&before_batched),
        single.server().region().op_counts().since(&before_single),
    );
    assert_eq!(ops_batched, ops_single, "the same backend operations");
    // Every page is mapped once in each space; the page tables are made
    // once, by the first page that needs them.
    assert_eq!(ops_batched.get(OpKind::MapFrame), 64 * 3);
    let frees: Vec<Request> = replies.iter().map(|r| Request::Vfree { addr: address(r) }).collect();
    assert!(batch(&mut batched, A, &frees).unwrap().iter().all(|r| *r == Reply::Done));
}

#[test]
fn a_bad_operation_fails_alone_with_its_error_and_the_others_go_on() {
    let mut d = three_spaces();
    let theirs = address(&send(&mut d, B, ONE_PAGE, None));
    let mine = address(&send(&mut d, A, Request::Vmalloc { size: 4 * PAGE_SIZE, large_pages: false }, None));
    let ops = [
        ONE_PAGE,
        Request::Vfree { addr: theirs },
        Request::Vmalloc { size: 0, large_pages: false },
        Request::Vrealloc { addr: mine + PAGE_SIZE, size: 8 * PAGE_SIZE },
        Request::VmallocWith { size: PAGE_SIZE, options: VmallocOptions::aligned(3 * PAGE_SIZE) },
        Request::Protect { addr: mine, protection: Protection::ReadOnly },
        Request::Protect { addr: theirs, protection: Protection::ReadOnly },
        Request::Vrealloc { addr: mine, size: 2 * PAGE_SIZE },
        Request::PercpuFree { offset: 12345 },
        Request::Translate { addr: theirs },
    ];
    let replies = batch(&mut d, A, &ops).unwrap();
    assert_eq!(replies.len(), ops.len(), "one reply per operation");
    let made = address(&replies[0]);
    assert!(mapped_everywhere(&d, made));
    let expected_errors = [
        (1, ErrorCode::NotOwner),
        (2, ErrorCode::InvalidArgument),
        (3, ErrorCode::NotFound),
        (4, ErrorCode::InvalidArgument),
        (6, ErrorCode::NotOwner),
        (8, ErrorCode::NotFound),
    ];
    for (i, code) in expected_errors {
        assert_eq!(replies[i], Reply::Error(code), "operation {i}: {:?}", ops[i]);
    }
    assert_eq!(replies[5], Reply::Done);
    assert_eq!(replies[7], Reply::Realloc(Realloc { addr: mine, moved: false }));
    assert!(matches!(replies[9], Reply::Translation(Some(t)) if t.writable), "B's area untouched");
    // What stands is what the good operations alone make.
    let mut alone = three_spaces();
    send(&mut alone, B, ONE_PAGE, None);
    send(&mut alone, A, Request::Vmalloc { size: 4 * PAGE_SIZE, large_pages: false }, None);
    for i in [0, 5, 7] {
        send(&mut alone, A, ops[i], None);
    }
    assert_eq!(snapshot(d.server()), snapshot(alone.server()));
}

#[test]
fn requests_that_do_not_batch_fail_in_their_place() {
    let mut d = three_spaces();
    // A batch made by hand around the builder's check: a statistics
    // request, a registration and a purge in the middle.
    let ops = [ONE_PAGE, Request::Stats, Request::Purge, Request::Unregister { space: 0 }, ONE_PAGE];
    let hand_made = BatchWords::encode(&(ops.len() as u8, ops)).expect("fits");
    let answer = d.handle_batch(A, &hand_made, |d, op| d.batch_op(A, op)).expect("decodes");
    check(d.server());
    let replies = answer.replies;
    assert!(matches!(replies[0], Reply::Address(_)) && matches!(replies[4], Reply::Address(_)));
    for reply in &replies[1..4] {
        assert_eq!(*reply, Reply::Error(ErrorCode::InvalidArgument));
    }
    assert_eq!(d.server().region().space_count(), 3, "the unregister in the batch did nothing");
}

#[test]
fn a_batch_that_cannot_be_decoded_or_from_a_caller_without_a_space_is_refused_whole() {
    let mut d = three_spaces();
    let before = snapshot(d.server());
    let mut good = Batch::new();
    good.push(ONE_PAGE).unwrap();
    let stranger = Badge(0x999);
    assert_eq!(
        d.handle_batch(stranger, &good.words(), |d, op| d.batch_op(stranger, op)).map(|_| ()),
        Err(ErrorCode::NotRegistered)
    );
    assert_eq!(
        d.handle_batch(ADMIN, &good.words(), |d, op| d.batch_op(ADMIN, op)).map(|_| ()),
        Err(ErrorCode::NotRegistered)
    );
    let mut too_many = good.words().as_slice().to_vec();
    // More operations announced than a batch holds.
    too_many[0] = (too_many[0] & !0xff) | 0x7f;
    for words in [BatchWords::from_slice(&too_many), BatchWords::from_slice(&[]), BatchWords::from_slice(&[0xff])] {
        assert_eq!(d.handle_batch(A, &words, |d, op| d.batch_op(A, op)).map(|_| ()), Err(ErrorCode::Malformed));
    }
    assert_eq!(snapshot(d.server()), before);
}

#[test]
fn an_operation_that_fails_in_the_kernel_is_undone_alone() {
    let mut d = three_spaces();
    let pages = 4;
    let op = Request::Vmalloc { size: pages * PAGE_SIZE, large_pages: false };
    // The third operation's second Map (in the first space) fails: the
    // first two stand, the third is undone whole, the fourth is made.
    let mut probe = three_spaces();
    let creating = |d: &Dispatcher<Sim>| {
        let c = d.server().region().backend().counts();
        [OpKind::AllocFrame, OpKind::CreateStructure, OpKind::MapFrame].iter().map(|&k| c.get(k)).sum::<u64>()
    };
    let start = creating(&probe);
    send(&mut probe, A, op, None);
    send(&mut probe, A, op, None);
    let third_starts = creating(&probe) - start;
    d.sim_hooks().fail_after(Some(third_starts + pages + 1));
    let replies = batch(&mut d, A, &[op; 4]).unwrap();
    assert!(matches!(replies[0], Reply::Address(_)) && matches!(replies[1], Reply::Address(_)));
    assert_eq!(replies[2], Reply::Error(ErrorCode::OutOfMemory));
    assert!(matches!(replies[3], Reply::Address(_)));
    assert_eq!(d.server().usage(A).objects.areas, 3);
    assert!(replies
        .iter()
        .filter_map(|r| if let Reply::Address(a) = r { Some(*a) } else { None })
        .all(|a| { (0..pages).all(|i| mapped_everywhere(&d, a + i * PAGE_SIZE)) }));
}
