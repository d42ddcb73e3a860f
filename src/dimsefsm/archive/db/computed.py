"""Attributes of a patient, study or series that no instance carries, computed in SQL.

Viewers list studies with Modalities in Study and the related-instance
counts; those describe the whole entity, so they are counted over its rows
(all of them: Number of Study Related Instances is the study's size, whatever
else the query matched on), patient-scope ones over every study of the
patient.
"""

from __future__ import annotations

from typing import Any, Final

from pydicom import Dataset
from pydicom.dataelem import DataElement
from sqlalchemy import Connection, func, select

from dimsefsm.archive.db.schema import instance, series, study

# Attributes of a patient, study or series that no instance carries: (VR, scope).
COMPUTED_KEYS: Final[dict[int, tuple[str, str]]] = {
    0x00080061: ("CS", "study"),  # Modalities in Study
    0x00080062: ("UI", "study"),  # SOP Classes in Study
    0x00201200: ("IS", "patient"),  # Number of Patient Related Studies
    0x00201202: ("IS", "patient"),  # Number of Patient Related Series
    0x00201204: ("IS", "patient"),  # Number of Patient Related Instances
    0x00201206: ("IS", "study"),  # Number of Study Related Series
    0x00201208: ("IS", "study"),  # Number of Study Related Instances
    0x00201209: ("IS", "series"),  # Number of Series Related Instances
}
_SCOPE_DEPTH: Final = {"patient": 0, "study": 1, "series": 2}
_ALL: Final = instance.join(series, instance.c.series_pk == series.c.pk).join(
    study, series.c.study_pk == study.c.pk
)
_ENTITY_PK: Final = (study.c.patient_pk, study.c.pk, series.c.pk, instance.c.pk)


def computed_attributes(
    connection: Connection, tags: tuple[int, ...], pks: tuple[int, ...]
) -> Dataset:
    """The values of ``tags`` for the entity whose patient..level primary keys are ``pks``."""
    result = Dataset()
    for tag in tags:
        vr, scope = COMPUTED_KEYS[tag]
        depth = min(_SCOPE_DEPTH[scope], len(pks) - 1) if scope != "patient" else 0
        within = _ENTITY_PK[depth] == pks[depth]
        value: Any
        if tag in (0x00080061, 0x00080062):
            column = series.c.modality if tag == 0x00080061 else instance.c.sop_class_uid
            rows = connection.execute(
                select(column)
                .select_from(_ALL)
                .where(within, column.is_not(None))
                .group_by(column)
                .order_by(func.min(instance.c.pk))
            )
            value = [str(v) for v in rows.scalars()]
        else:
            if tag == 0x00201200:
                counted: Any = func.count(func.distinct(study.c.pk))
            elif tag in (0x00201202, 0x00201206):
                counted = func.count(func.distinct(series.c.pk))
            else:
                counted = func.count()
            counting = select(counted).select_from(_ALL).where(within)
            value = str(connection.execute(counting).scalar())
        result.add(DataElement(tag, vr, value))
    return result
