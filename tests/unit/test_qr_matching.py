"""C-FIND matching (PS3.4 C.2.2.2): every matching type and its edge cases."""

from __future__ import annotations

import fnmatch
import struct
import time
from io import BytesIO
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from dimsefsm.qr.matching import (
    CONTROL_TAGS,
    candidate_element,
    compile_query,
    is_universal,
    matches,
    wildcard_matcher,
)


def ds(**keys: Any) -> Dataset:
    dataset = Dataset()
    for keyword, value in keys.items():
        setattr(dataset, keyword, value)
    return dataset


def raw(*elements: tuple[int, bytes]) -> Dataset:
    """A data set as read from the wire (Implicit VR LE): values stay unconverted until used."""
    data = b""
    for tag, value in elements:
        if len(value) % 2:
            value += b" "
        data += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
    return read_dataset(BytesIO(data), True, True)


def match(query: dict[str, Any], candidate: dict[str, Any], **options: Any) -> bool:
    return compile_query(ds(**query), **options).matches(ds(**candidate))


# -- universal -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("PatientName", ""),
        ("PatientName", "*"),
        ("PatientID", "**"),
        ("StudyInstanceUID", ""),
        ("StudyDate", ""),
        ("SeriesNumber", None),
        ("ModalitiesInStudy", []),
    ],
)
def test_universal_keys_match_everything_and_compile_to_nothing(keyword: str, value: Any) -> None:
    matcher = compile_query(ds(**{keyword: value}))
    assert matcher.is_universal
    assert matcher.matching_tags == ()
    assert matcher.matches(Dataset())
    assert matcher.matches(ds(PatientName="X", StudyDate="20200101"))


def test_lone_star_is_literal_outside_wild_card_vrs() -> None:
    assert not match({"StudyInstanceUID": "*"}, {"StudyInstanceUID": "1.2"})
    assert match({"StudyInstanceUID": "*"}, {"StudyInstanceUID": "*"})


def test_is_universal_for_sequences() -> None:
    empty = ds(ProcedureCodeSequence=Sequence([]))
    one_empty_item = ds(ProcedureCodeSequence=Sequence([Dataset()]))
    with_key = ds(ProcedureCodeSequence=Sequence([ds(CodeValue="X")]))
    assert is_universal(empty["ProcedureCodeSequence"])
    assert is_universal(one_empty_item["ProcedureCodeSequence"])
    assert not is_universal(with_key["ProcedureCodeSequence"])


# -- single value ----------------------------------------------------------------------------
def test_single_value_is_exact_and_case_sensitive() -> None:
    assert match({"PatientID": "ABC"}, {"PatientID": "ABC"})
    assert not match({"PatientID": "ABC"}, {"PatientID": "abc"})
    assert not match({"PatientID": "ABC"}, {"PatientID": "ABCD"})
    assert not match({"StudyDescription": "Chest"}, {"StudyDescription": "CHEST"})


def test_absent_or_empty_candidate_value_fails_a_non_universal_key() -> None:
    assert not match({"PatientID": "ABC"}, {})
    assert not match({"PatientID": "ABC"}, {"PatientID": ""})
    assert not match({"PatientID": "A*"}, {"PatientID": ""})
    assert not match({"StudyDate": "20200101-"}, {"StudyDate": ""})
    assert not match({"SeriesNumber": "3"}, {"SeriesNumber": None})
    assert not match({"ModalitiesInStudy": "CT"}, {"ModalitiesInStudy": []})


def test_all_keys_must_match() -> None:
    query = {"PatientID": "1", "AccessionNumber": "A1"}
    assert match(query, {"PatientID": "1", "AccessionNumber": "A1"})
    assert not match(query, {"PatientID": "1", "AccessionNumber": "A2"})


@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ({"SeriesNumber": "5"}, {"SeriesNumber": 5}, True),
        ({"SeriesNumber": "05"}, {"SeriesNumber": "5"}, True),
        ({"SeriesNumber": "5"}, {"SeriesNumber": "6"}, False),
        ({"PatientWeight": "70.0"}, {"PatientWeight": "70"}, True),
        ({"Rows": 512}, {"Rows": 512}, True),
        ({"Rows": 512}, {"Rows": 256}, False),
    ],
)
def test_numbers_compare_by_value(
    query: dict[str, Any], candidate: dict[str, Any], expected: bool
) -> None:
    assert match(query, candidate) is expected


def test_non_numeric_query_for_a_number_matches_nothing() -> None:
    query = raw((0x00200011, b"x"))
    assert not compile_query(query).matches(ds(SeriesNumber="1"))
    assert not compile_query(raw((0x00200011, b"1*"))).matches(ds(SeriesNumber="12"))


# -- person names ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ("SMITH^JOHN", "SMITH^JOHN", True),
        ("SMITH^JOHN", "SMITH^JOHN^^^", True),
        ("SMITH^JOHN^^", "SMITH^JOHN", True),
        ("SMITH^JOHN", "smith^john", False),
        ("SMITH", "SMITH^JOHN", False),
        ("Yamada^Tarou", "Yamada^Tarou=山田^太郎=やまだ^たろう", True),
        ("Yamada^Tarou=山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう", True),
        ("=山田^太郎", "Yamada^Tarou=山田^太郎", True),
        ("=山田^花子", "Yamada^Tarou=山田^太郎", False),
        ("=山田^太郎", "Yamada^Tarou", False),
    ],
)
def test_person_names_compare_per_component_group(
    query: str, candidate: str, expected: bool
) -> None:
    assert match({"PatientName": query}, {"PatientName": candidate}) is expected


@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ("SM*", "SMITH^JOHN", True),
        ("*^JOHN", "SMITH^JOHN", True),
        ("SMITH^*", "SMITH", True),
        ("SMITH^J*", "SMITH", False),
        ("SM?TH^JOHN", "SMYTH^JOHN", True),
        ("SM?TH^JOHN", "SMITH^JOHNNY", False),
        ("sm*", "SMITH^JOHN", False),
        ("*^*", "SMITH^JOHN", True),
        ("Ya*=山*", "Yamada^Tarou=山田^太郎", True),
        ("Ya*=川*", "Yamada^Tarou=山田^太郎", False),
    ],
)
def test_wild_cards_on_person_names(query: str, candidate: str, expected: bool) -> None:
    assert match({"PatientName": query}, {"PatientName": candidate}) is expected


def test_person_names_case_insensitive_when_asked() -> None:
    options = {"pn_case_insensitive": True}
    assert match({"PatientName": "smith^john"}, {"PatientName": "SMITH^John"}, **options)
    assert match({"PatientName": "sm*"}, {"PatientName": "SMITH^JOHN"}, **options)
    assert not match({"PatientName": "jones"}, {"PatientName": "SMITH"}, **options)
    # the option changes person names only
    assert not match({"PatientID": "abc"}, {"PatientID": "ABC"}, **options)


def test_multi_valued_person_names_match_on_any_value() -> None:
    candidate = {"OtherPatientNames": ["DOE^JANE", "ROE^JANE"]}
    assert match({"OtherPatientNames": "ROE^JANE"}, candidate)
    assert match({"OtherPatientNames": "R*"}, candidate)
    assert not match({"OtherPatientNames": "POE*"}, candidate)


# -- wild cards ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ("AB*", "ABC", True),
        ("AB*", "AB", True),
        ("AB*", "XABC", False),
        ("*BC", "ABC", True),
        ("A*C", "ABBBC", True),
        ("A*C", "ABBBD", False),
        ("A?C", "ABC", True),
        ("A?C", "AC", False),
        ("A??", "ABC", True),
        ("A.B*", "AXB", False),
        ("A.B*", "A.Bz", True),
        ("(1)+*", "(1)+2", True),
        ("A*B?", "AxxBy", True),
    ],
)
def test_wild_card_matching(query: str, candidate: str, expected: bool) -> None:
    assert match({"PatientID": query}, {"PatientID": candidate}) is expected


@settings(max_examples=2000, deadline=None)
@given(
    st.text(alphabet="ab*?", max_size=9),
    st.text(alphabet="ab", max_size=12),
)
def test_wild_cards_agree_with_fnmatch(pattern: str, text: str) -> None:
    """Segment matching accepts exactly what a glob of ``*`` and ``?`` accepts (no ``[``)."""
    assert wildcard_matcher(pattern)(text) is fnmatch.fnmatchcase(text, pattern)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*A*A*A*B", "A" * 1000, False),
        ("*A*A*A*B", "A" * 999 + "B", True),
        ("*A*A*A*B", "B" + "A" * 999, False),
        ("*?" * 14 + "Z", "X" * 30, False),
        ("*?" * 14, "X" * 30, True),
        ("*?" * 14, "X" * 13, False),
        ("*" + "A?" * 40 + "B*", "A" * 5000, False),
        ("*" + "A?" * 40 + "B*", "A" * 5000 + "B", True),
        ("**?*?*", "ab", True),
    ],
)
def test_pathological_wild_cards_are_answered(pattern: str, text: str, expected: bool) -> None:
    """Patterns that made a backtracking regex run for minutes (issue 11, item 10)."""
    assert wildcard_matcher(pattern)(text) is expected
    assert match({"PatientID": pattern}, {"PatientID": text}) is expected


def test_wild_cards_apply_to_every_wild_card_vr() -> None:
    assert match({"Modality": "M?"}, {"Modality": "MR"})  # CS
    assert match({"StationName": "CT*"}, {"StationName": "CT01"})  # SH
    assert match({"RetrieveURL": "http*"}, {"RetrieveURL": "https://x"}) is True  # control: ignored


def test_wild_cards_are_literal_for_uids_dates_and_numbers() -> None:
    assert not match({"SOPInstanceUID": "1.2.*"}, {"SOPInstanceUID": "1.2.3"})
    assert not match({"StudyDate": "2020*"}, {"StudyDate": "20200101"})
    assert not match({"StudyTime": "12*"}, {"StudyTime": "1200"})


@given(st.text(alphabet="ABCxyz.^ 12()+", min_size=1, max_size=12), st.integers(0, 12))
def test_a_value_matches_its_own_prefix_and_suffix_patterns(text: str, cut: int) -> None:
    candidate = ds(PatientID=text)
    value = candidate.PatientID  # as pydicom keeps it
    cut = min(cut, len(value))
    for pattern in (value[:cut] + "*", "*" + value[cut:], value[:cut] + "?" * (len(value) - cut)):
        assert compile_query(ds(PatientID=pattern)).matches(candidate), pattern
    longer = value + "?"
    assert not compile_query(ds(PatientID=longer)).matches(candidate)


# -- lists of UIDs ---------------------------------------------------------------------------
def test_list_of_uids_matches_any_listed_uid() -> None:
    query = {"StudyInstanceUID": ["1.2.3", "1.2.4", "1.2.5"]}
    assert match(query, {"StudyInstanceUID": "1.2.4"})
    assert not match(query, {"StudyInstanceUID": "1.2.6"})
    assert not match(query, {})


def test_single_uid_matches_exactly() -> None:
    assert match({"StudyInstanceUID": "1.2.3"}, {"StudyInstanceUID": "1.2.3"})
    assert not match({"StudyInstanceUID": "1.2.3"}, {"StudyInstanceUID": "1.2.30"})


def test_multi_valued_uid_candidates() -> None:
    candidate = {"SOPClassesInStudy": ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"]}
    assert match({"SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.4"}, candidate)
    assert match({"SOPClassesInStudy": ["9.9", "1.2.840.10008.5.1.4.1.1.2"]}, candidate)
    assert not match({"SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.7"}, candidate)


# -- ranges ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ("20200101-20201231", "20200101", True),
        ("20200101-20201231", "20201231", True),
        ("20200101-20201231", "20200615", True),
        ("20200101-20201231", "20191231", False),
        ("20200101-20201231", "20210101", False),
        ("-20200630", "19991231", True),
        ("-20200630", "20200630", True),
        ("-20200630", "20200701", False),
        ("20200630-", "20200630", True),
        ("20200630-", "29991231", True),
        ("20200630-", "20200629", False),
        ("20200630", "20200630", True),
        ("20200630", "20200631", False),
        ("2020.06.30", "20200630", True),
        ("20200101-20201231", "2020.06.15", True),
        ("20200101-20201231", "garbage", False),
        ("garbage-20201231", "20200101", False),
    ],
)
def test_date_ranges(query: str, candidate: str, expected: bool) -> None:
    assert match({"StudyDate": query}, {"StudyDate": candidate}) is expected


@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ("1000-1200", "1000", True),
        ("1000-1200", "113000", True),
        ("1000-1200", "120059.999", True),
        ("1000-1200", "120100", False),
        ("1000-1200", "095959", False),
        ("-0800", "075959", True),
        ("-0800", "080100", False),
        ("2200-", "235959.999999", True),
        ("2200-", "215959", False),
        ("1200", "120030", True),
        ("1200", "1201", False),
        ("120000.5", "120000.5", True),
        ("120000.5", "120000.4", False),
        ("10:00-12:00", "11:30:00", True),
        ("1000-1200", "1x", False),
        ("1000-1200", "10.5", False),
    ],
)
def test_time_ranges_cover_the_precision_of_their_ends(
    query: str, candidate: str, expected: bool
) -> None:
    assert match({"StudyTime": query}, {"StudyTime": candidate}) is expected


@pytest.mark.parametrize(
    ("query", "candidate", "expected"),
    [
        ("20200101-20200201", "20200115103000", True),
        ("20200101-20200201", "20200201235959", True),
        ("20200101-20200201", "20200202", False),
        ("2019-2020", "20201231", True),
        ("2019-2020", "2021", False),
        ("-2019", "20191231235959.999999", True),
        ("2019-", "2018", False),
        ("202001011200+0100-202001011300+0100", "202001011130+0000", True),
        ("202001011200+0100-202001011300+0100", "202001011230+0000", False),
        ("20200101120000-0500", "20200101170000+0000", True),
        ("20200101120000-0500", "20200101120000+0000", False),
        ("2020-01-01", "20200101", False),
    ],
)
def test_datetime_ranges_honour_utc_offsets(query: str, candidate: str, expected: bool) -> None:
    assert match({"AcquisitionDateTime": query}, {"AcquisitionDateTime": candidate}) is expected


def test_datetime_without_offset_uses_the_timezone_offset_attributes() -> None:
    query = {"AcquisitionDateTime": "202001011200-202001011300"}
    local = {"AcquisitionDateTime": "202001011230"}
    assert match(query, local)
    assert not match(query, {**local, "TimezoneOffsetFromUTC": "+0100"})
    assert match(
        {**query, "TimezoneOffsetFromUTC": "+0100"}, {**local, "TimezoneOffsetFromUTC": "+0100"}
    )
    assert match(query, {"AcquisitionDateTime": "202001011230+0100"}, timezone_offset=60)


def test_multi_valued_date_candidates_match_on_any_value() -> None:
    query = ds(StudyDate="20200101-20200131")
    candidate = Dataset()
    candidate.add_new(0x00080020, "DA", ["20191201", "20200115"])
    assert compile_query(query).matches(candidate)


# -- multiple values and empty value ---------------------------------------------------------
def test_multi_valued_candidates_match_when_any_value_matches() -> None:
    candidate = {"ModalitiesInStudy": ["CT", "SR"]}
    assert match({"ModalitiesInStudy": "SR"}, candidate)
    assert match({"ModalitiesInStudy": "C?"}, candidate)
    assert not match({"ModalitiesInStudy": "MR"}, candidate)


def test_multi_valued_keys_need_every_value_present() -> None:
    candidate = {"ModalitiesInStudy": ["CT", "SR", "PR"]}
    assert match({"ModalitiesInStudy": ["SR", "CT"]}, candidate)
    assert not match({"ModalitiesInStudy": ["SR", "MR"]}, candidate)
    assert not match({"ModalitiesInStudy": ["SR", "MR"]}, {})


def test_empty_value_matching_with_two_quotation_marks() -> None:
    assert match({"AccessionNumber": '""'}, {"AccessionNumber": ""})
    assert match({"AccessionNumber": '""'}, {})
    assert not match({"AccessionNumber": '""'}, {"AccessionNumber": "A1"})


# -- sequences -------------------------------------------------------------------------------
def code(value: str, scheme: str = "SRT") -> Dataset:
    return ds(CodeValue=value, CodingSchemeDesignator=scheme)


def test_sequence_matches_when_any_item_matches_all_item_keys() -> None:
    candidate = Dataset()
    candidate.ProcedureCodeSequence = Sequence([code("A1"), code("B2", "LN")])
    query = Dataset()
    query.ProcedureCodeSequence = Sequence([code("B2", "LN")])
    assert compile_query(query).matches(candidate)
    query.ProcedureCodeSequence = Sequence([code("B2", "SRT")])  # keys split over two items
    assert not compile_query(query).matches(candidate)
    query.ProcedureCodeSequence = Sequence([ds(CodeValue="A*")])
    assert compile_query(query).matches(candidate)


def test_sequence_key_fails_on_absent_or_empty_candidate_sequences() -> None:
    query = Dataset()
    query.ProcedureCodeSequence = Sequence([code("A1")])
    matcher = compile_query(query)
    assert matcher.matching_tags == (0x00081032,)
    assert not matcher.matches(Dataset())
    assert not matcher.matches(ds(ProcedureCodeSequence=Sequence([])))


def test_sequence_with_only_universal_item_keys_is_universal() -> None:
    query = Dataset()
    query.ProcedureCodeSequence = Sequence([ds(CodeValue="", CodeMeaning="")])
    matcher = compile_query(query)
    assert matcher.is_universal
    assert matcher.matches(Dataset())


def test_nested_sequences_match_recursively() -> None:
    protocol = Dataset()
    protocol.ScheduledProtocolCodeSequence = Sequence([code("P1")])
    step = ds(Modality="MR", ScheduledStationAETitle="MR1")
    step.ScheduledProtocolCodeSequence = Sequence([code("P1")])
    candidate = Dataset()
    candidate.ScheduledProcedureStepSequence = Sequence([step])
    query_step = ds(Modality="MR")
    query_step.ScheduledProtocolCodeSequence = Sequence([ds(CodeValue="P?")])
    query = Dataset()
    query.ScheduledProcedureStepSequence = Sequence([query_step])
    assert compile_query(query).matches(candidate)
    query_step.ScheduledProtocolCodeSequence = Sequence([ds(CodeValue="Q?")])
    assert not compile_query(query).matches(candidate)


# -- control keys, private data, raw candidates ----------------------------------------------
def test_control_keys_are_never_matched() -> None:
    query = ds(
        QueryRetrieveLevel="STUDY",
        SpecificCharacterSet="ISO_IR 192",
        RetrieveAETitle="SOMEWHERE",
        InstanceAvailability="ONLINE",
        QueryRetrieveView="CLASSIC",
        TimezoneOffsetFromUTC="+0100",
    )
    matcher = compile_query(query)
    assert matcher.is_universal
    assert matcher.matches(Dataset())
    assert {0x00080005, 0x00080052, 0x00080054} <= CONTROL_TAGS


def test_group_lengths_command_and_private_creator_elements_are_ignored() -> None:
    query = Dataset()
    query.add_new(0x00100000, "UL", 4)
    query.add_new(0x00000800, "US", 1)
    query.add_new(0x00090010, "LO", "ACME 1.0")
    assert compile_query(query).is_universal


def test_private_data_elements_match_literally() -> None:
    query = Dataset()
    query.add_new(0x00091010, "LO", "FLAG*")
    candidate = Dataset()
    candidate.add_new(0x00091010, "LO", "FLAGGED")
    assert compile_query(query).matches(candidate)
    unknown = Dataset()
    unknown.add_new(0x00091011, "UN", b"AB")
    candidate.add_new(0x00091011, "UN", b"AB")
    assert compile_query(unknown).matches(candidate)
    candidate[0x00091011].value = b"AC"
    assert not compile_query(unknown).matches(candidate)


def test_candidates_read_from_bytes_are_converted_on_access() -> None:
    candidate = raw((0x00080020, b"20200101"), (0x00080061, b"CT\\MR"), (0x00100010, b"DOE^JOHN"))
    assert type(candidate._dict[Tag(0x00100010)]).__name__ == "RawDataElement"
    element = candidate_element(candidate, 0x00100010)
    assert element is not None
    assert str(element.value) == "DOE^JOHN"
    assert candidate_element(candidate, 0x00100020) is None
    query = raw((0x00080020, b"20200101-"), (0x00080061, b"MR"), (0x00100010, b"DOE*"))
    assert compile_query(query).matches(candidate)
    assert not compile_query(raw((0x00080061, b"US"))).matches(candidate)


def test_matches_helper_and_filter() -> None:
    query = ds(PatientID="2*")
    candidates = [ds(PatientID=str(i)) for i in range(30)]
    matcher = compile_query(query)
    assert [c.PatientID for c in matcher.filter(candidates)] == ["2"] + [
        str(i) for i in range(20, 30)
    ]
    assert matches(query, candidates[2])
    assert not matches(query, candidates[3])


def test_ten_thousand_candidates_are_matched_quickly() -> None:
    candidates = []
    for i in range(10_000):
        candidate = ds(
            PatientName=f"DOE{i % 100}^JOHN",
            PatientID=str(i),
            StudyDate=f"2020{1 + i % 12:02d}{1 + i % 28:02d}",
            ModalitiesInStudy=["CT", "MR"] if i % 2 else ["US"],
            StudyInstanceUID=f"1.2.3.{i}",
        )
        candidates.append(candidate)
    query = ds(
        QueryRetrieveLevel="STUDY",
        PatientName="DOE1*",
        StudyDate="20200301-20200630",
        ModalitiesInStudy="MR",
        StudyInstanceUID="",
    )
    started = time.perf_counter()
    found = list(compile_query(query).filter(candidates))
    elapsed = time.perf_counter() - started
    expected = [
        c
        for c in candidates
        if str(c.PatientName).split("^")[0] in {"DOE1", *(f"DOE{n}" for n in range(10, 20))}
        and "20200301" <= c.StudyDate <= "20200630"
        and "MR" in c.ModalitiesInStudy
    ]
    assert found == expected
    assert len(found) == 200
    assert elapsed < 1.0  # measured ~30 ms; the bound only catches an accidental O(n^2)
