"""The default instance source of C-GET and C-MOVE: Datasets, and DICOM files by path.

The retrieve SCPs (:mod:`dimsefsm.services.retrieve`) never open a file; what a
handler yields is read through an :class:`~dimsefsm.services.retrieve.InstanceSource`.
This one reads what pynetdicom's handlers yield: a ``Dataset`` as it is, a path
as a DICOM Part 10 file (its meta header only, unless it must be converted).
An archive that keeps instances elsewhere supplies its own.
"""

from __future__ import annotations

from pathlib import Path

from pydicom import Dataset, dcmread

from dimsefsm.assoc.negotiation import Negotiated
from dimsefsm.part10 import Part10Error, read_part10_info
from dimsefsm.services.get import strip_bulk_data
from dimsefsm.services.retrieve import InstanceIdentity
from dimsefsm.services.storage import StoreSource, store_source

_UNKNOWN = InstanceIdentity(None, None, None)


class FileInstances:
    """Datasets and Part 10 files, read where the handler said they are."""

    def identity(self, item: object) -> InstanceIdentity:
        """SOP class, instance and transfer syntax; an unreadable file tells nothing."""
        if isinstance(item, Dataset):
            sop_class, sop_instance = item.get("SOPClassUID"), item.get("SOPInstanceUID")
            syntax = getattr(getattr(item, "file_meta", None), "TransferSyntaxUID", None)
            return InstanceIdentity(
                str(sop_class) if sop_class else None,
                str(sop_instance) if sop_instance else None,
                str(syntax) if syntax else None,
            )
        if isinstance(item, (str, Path)):
            try:
                info = read_part10_info(Path(item))
            except (Part10Error, OSError):
                return _UNKNOWN
            return InstanceIdentity(
                info.sop_class_uid or None,
                info.sop_instance_uid or None,
                info.transfer_syntax or None,
            )
        return _UNKNOWN

    def store_source(self, negotiated: Negotiated, item: object, without_bulk: bool) -> StoreSource:
        """The C-STORE for ``item``: a file goes undecoded where its own syntax was accepted."""
        if not isinstance(item, (Dataset, str, Path)):
            raise TypeError(f"the handler yielded {type(item).__name__}, not a Dataset or path")
        if without_bulk:
            item = strip_bulk_data(item if isinstance(item, Dataset) else dcmread(Path(item)))
        return store_source(negotiated, item)
