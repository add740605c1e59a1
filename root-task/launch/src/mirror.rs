//! VSpaces that map a process's image and its first thread's IPC buffer
//! as its own VSpace does (the same frames, through copies of their
//! capabilities, at the same addresses with the same rights), so that
//! thread can be moved into any of them with TCB SetSpace and goes on as
//! it was: one thread can run in many address spaces in turn.

use crate::allocator::Allocator;
use crate::elf_image::ElfImage;
use crate::process::{page_rights, Process};
use crate::vspace::VSpace;
use sel4_layer::abi::{init_cap, CPtr};
use sel4_layer::{CNode, CapRights, Sel4Error};

impl Process {
    /// A new VSpace that mirrors this process's: its image, loaded from
    /// `image` (checked against what was loaded), and its first thread's
    /// IPC buffer.
    ///
    /// # Panics
    /// If the process has more than its first thread or memory beyond its
    /// image (a stack, a heap): the mirror would lack it. If `image` is
    /// not the one it was loaded from.
    pub fn mirror(&self, alloc: &mut Allocator, image: &[u8]) -> VSpace {
        let name = self.name;
        assert!(self.threads == 1 && !self.memory_beyond_image, "{name}: only the image and one thread are mirrored");
        let image = ElfImage::parse(name, image);
        let pages = image.pages().count() as u64;
        assert!(image.entry == self.entry && pages == self.image_pages, "{name}: not the image it was loaded from");
        let mut vspace = VSpace::new(alloc);
        let root = CNode::root_task(init_cap::CNODE);
        let mut map_copy = |vspace: &mut VSpace, frame, vaddr, rights| {
            let copy = alloc.slot();
            root.copy(copy, root, frame, CapRights::ALL).unwrap_or_else(|e| panic!("{name}: frame copy: {e:?}"));
            vspace.map(alloc, copy, vaddr, rights);
        };
        for (frame, page) in (self.image_frames..).zip(image.pages()) {
            map_copy(&mut vspace, frame, page, page_rights(image.writable(page)));
        }
        map_copy(&mut vspace, self.main.ipc_frame, self.main.ipc_buffer, CapRights::READ_WRITE);
        vspace
    }

    /// Moves the first thread into the VSpace of PML4 `vspace_root` (its
    /// own, or a mirror of it), keeping its CSpace and fault endpoint. It
    /// goes on there from where it is when it next runs.
    pub fn move_main_thread(&self, vspace_root: CPtr) -> Result<(), Sel4Error> {
        self.main.tcb.set_space(self.fault_slot, self.cnode.cap, self.cspace_guard(), vspace_root)
    }
}
