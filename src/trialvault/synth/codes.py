"""Distributions of DfE codes used by the generator (plausible for England, not any one LA).

Every code drawn here is valid in every collection year the generator writes (checked by a test
against the spec's code lists), so a clean synthetic return passes the code-list rules.
"""

from __future__ import annotations

from trialvault.synth.params import Cat

# Ethnicity of children in need, roughly as in DfE 'Characteristics of children in need'.
ETHNICITY = Cat.of({
    "WBRI": 68.0, "WIRI": 0.3, "WOTH": 4.5, "WIRT": 0.2, "WROM": 0.6, "MWBC": 3.0,
    "MWBA": 1.0, "MWAS": 1.5, "MOTH": 2.5, "AIND": 1.2, "APKN": 3.0, "ABAN": 1.0,
    "AOTH": 1.5, "BCRB": 1.0, "BAFR": 2.8, "BOTH": 1.0, "CHNE": 0.2, "OOTH": 2.2,
    "REFU": 0.5, "NOBT": 3.0})
UASC_ETHNICITY = Cat.of({"BAFR": 30.0, "OOTH": 25.0, "AOTH": 25.0, "WOTH": 8.0, "BOTH": 7.0,
                         "MOTH": 5.0})
DISABILITY = Cat.of({"LD": 30.0, "BEH": 25.0, "AUT": 20.0, "COMM": 10.0, "MOB": 5.0,
                     "HEAR": 3.0, "VIS": 3.0, "PC": 2.0, "HAND": 1.0, "INC": 1.0})
REFERRAL_SOURCE = Cat.of({
    "1A": 6.0, "1B": 1.0, "1C": 1.0, "1D": 0.5, "2A": 18.0, "2B": 1.0, "3A": 2.0, "3B": 1.5,
    "3C": 0.5, "3D": 1.0, "3E": 2.0, "3F": 7.0, "4": 2.0, "5A": 3.0, "5B": 3.0, "5C": 2.0,
    "5D": 3.0, "6": 30.0, "7": 2.0, "8": 5.0, "9": 1.0, "10": 1.5})
PRIMARY_NEED = Cat.of({"N1": 55.0, "N2": 4.0, "N3": 3.0, "N4": 8.0, "N5": 15.0, "N6": 6.0,
                       "N7": 1.0, "N8": 6.0, "N0": 2.0})
FACTORS_TEEN = Cat.of({
    "4A": 14.0, "14A": 8.0, "10A": 6.0, "11A": 5.0, "24A": 5.0, "3A": 8.0, "3B": 10.0,
    "4B": 10.0, "15A": 5.0, "16A": 7.0, "17A": 7.0, "2A": 3.0, "2B": 4.0, "1B": 3.0, "13A": 2.0,
    "18B": 2.0, "19B": 1.0, "18C": 0.5, "19C": 0.5, "7A": 1.0, "20": 3.0})
FACTORS_YOUNG = Cat.of({
    "3B": 18.0, "4B": 15.0, "16A": 15.0, "17A": 12.0, "2B": 8.0, "1B": 6.0, "5B": 3.0,
    "3C": 4.0, "2C": 2.0, "18B": 3.0, "19B": 1.0, "6B": 2.0, "20": 4.0})
ABUSE = Cat.of({"NEG": 50.0, "EMO": 36.0, "PHY": 7.0, "SAB": 4.0, "MUL": 3.0})
CIN_903 = Cat.of({"N1": 60.0, "N2": 3.0, "N3": 3.0, "N4": 8.0, "N5": 12.0, "N6": 6.0,
                  "N7": 1.0, "N8": 7.0})
# Legal status at entry. Youth justice statuses only from age 12 here (903 rule 358 allows 10):
# remand (J1), a transfer under PACE until court (J2, a night or two) and a youth
# rehabilitation order with a residence or fostering requirement (J3, rare). A child assessment
# order (L3) is the rarest way in. Short breaks (V3, V4) are a separate population (disabled
# children on agreed series of breaks) and freeing orders (D1) ended in 2005: neither is drawn.
LS_TEEN = Cat.of({"V2": 55.0, "C1": 25.0, "J1": 5.0, "J2": 3.0, "J3": 0.3, "L1": 5.0,
                  "L2": 3.0, "L3": 0.2, "C2": 5.0})
LS_YOUNG = Cat.of({"C1": 45.0, "V2": 40.0, "L2": 5.0, "L1": 5.0, "L3": 0.3, "C2": 5.0})
YOUTH_JUSTICE_LS = frozenset({"J1", "J2", "J3"})
# How long an emergency status can last before the next one (903 rules 361, 362, 363: police
# protection 72 hours, an EPO 21 days, a child assessment order 7 days), in days.
EMERGENCY_LS_DAYS = {"L1": 3, "L2": 21, "L3": 7}
# How a PACE transfer (J2) ends: home after court, with relatives, or otherwise.
REC_AFTER_PACE = Cat.of({"E4A": 60.0, "E13": 10.0, "E8": 30.0})
# Foster placements (U2 and U5: fostering for adoption, babies only), placed with parents.
FAMILY_PLACE = Cat.of({"U4": 10.0, "U6": 55.0, "U1": 5.0, "U3": 12.0, "P1": 5.0, "U2": 0.3,
                       "U5": 1.0})
# A baby placed with its mother in a family centre or mother and baby unit (R3), of the
# residential placements of children under one.
BABY_WITH_MOTHER = 0.8
RESIDENTIAL_PLACE = Cat.of({"K2": 78.0, "K1": 4.0, "R1": 6.0, "S1": 6.0, "R2": 6.0})
# Provider codes per placement type: relative and friend carers are approved by the LA's own
# fostering service; adoption placements are made by its (regional) adoption agency; secure
# homes are mostly another LA's (PR2); NHS and custody are PR3.
PROVIDER = {
    "U1": Cat.of({"PR1": 1.0}), "U2": Cat.of({"PR1": 1.0}), "U3": Cat.of({"PR1": 1.0}),
    "U4": Cat.of({"PR1": 60.0, "PR4": 35.0, "PR5": 5.0}),
    "U5": Cat.of({"PR1": 70.0, "PR4": 30.0}),
    "U6": Cat.of({"PR1": 55.0, "PR4": 40.0, "PR5": 5.0}),
    "A3": Cat.of({"PR1": 1.0}), "A4": Cat.of({"PR1": 1.0}), "A5": Cat.of({"PR1": 1.0}),
    "A6": Cat.of({"PR1": 1.0}),
    "P1": Cat.of({"PR0": 1.0}), "K2": Cat.of({"PR4": 75.0, "PR1": 15.0, "PR5": 10.0}),
    "K1": Cat.of({"PR1": 30.0, "PR2": 70.0}), "R1": Cat.of({"PR4": 1.0}),
    "R2": Cat.of({"PR3": 1.0}), "S1": Cat.of({"PR4": 60.0, "PR5": 40.0}),
    "R5": Cat.of({"PR3": 1.0}), "K3": Cat.of({"PR4": 70.0, "PR1": 30.0}),
    "R3": Cat.of({"PR4": 60.0, "PR5": 40.0}),
    "H5": Cat.of({"PR4": 70.0, "PR1": 30.0}), "P2": Cat.of({"PR1": 60.0, "PR4": 40.0}),
}
# Temporary placements (903 T0-T4) of a period of care: a stay in hospital (T1), the child's
# holiday (T2), cover while the foster carers are on holiday (T3), another short stay (T4) or
# another temporary placement (T0), after which the child returns to the same placement (903
# rule 383). Drawn after the follow-up only, so that placement moves in it (an outcome) keep
# the outcome model's count.
TEMPORARY_SHARE = 0.15  # of the periods of care that go on after the follow-up
TEMPORARY_PLACE = Cat.of({"T1": 35.0, "T3": 30.0, "T4": 20.0, "T2": 10.0, "T0": 5.0})
# Longest stays (903 rules 375, 376, 379: six weeks in hospital, three weeks of carers'
# holiday, seven days for T4; a fortnight for the others here).
TEMPORARY_MAX_DAYS = {"T0": 14, "T1": 42, "T2": 14, "T3": 21, "T4": 7}
# 'Other placement' (Z1; from 2025-26 split into Z11-Z14), of teenagers' placements out of
# residential care: no provider or URN (903 rules 213, 218, 222).
OTHER_PLACEMENT_SHARE = 0.02
OTHER_PLACE_SPLIT = Cat.of({"Z11": 1.0, "Z12": 1.0, "Z13": 1.0, "Z14": 1.0})
# Placements whose provider Ofsted did not register: the URN is given as 'XXXXXXX' (903 rule
# 218 wants one for every placement type not exempt, rule 222 no real one for these).
UNREGISTERED = frozenset({"H5", "P2"})
# Before supported accommodation was registered (K3, collection year 2025), young people of 16
# and 17 out of family placements lived semi-independently (H5) or independently (P2).
SEMI_INDEPENDENT_SHARE = 0.3
INDEPENDENT_SHARE = 0.3  # of those, in their own flat or lodgings (P2)
# Placements at the provider's premises: the placement postcode is the home's (903 rule 221).
HOME_PLACES = frozenset({"K1", "K2", "K3", "R3", "S1"})
# Same carers, new placement (RNE T or U): short-term fostering becomes long-term.
LONG_TERM = {"U6": "U4", "U3": "U1"}
# A legal status that changes together with a placement (RNE B or U, 903 rule 436).
NEXT_LS = {"V2": "C1", "C1": "C2"}
MOVE_RNE = Cat.of({"P": 75.0, "T": 12.0, "B": 9.0, "U": 4.0})
PLACE_CHANGE = Cat.of({"CARPL": 35.0, "CREQB": 15.0, "CHILD": 10.0, "LAREQ": 10.0,
                       "CREQO": 8.0, "STAND": 3.0, "ALLEG": 3.0, "CLOSE": 4.0, "APPRR": 2.0,
                       "PLACE": 5.0, "CUSTOD": 2.0, "OTHER": 3.0})
# Reasons a period of care ends before 18 (DfE 'Children looked after in England': returned
# home, child arrangements and special guardianship orders, care taken over by another LA, a
# few moved abroad or died) and at 18 (independent living, staying put, adult social care).
REC_HOME = Cat.of({"E4A": 64.0, "E4B": 8.0, "E13": 7.0, "E41": 6.0, "E45": 4.0, "E46": 2.0,
                   "E47": 3.0, "E48": 1.0, "E3": 3.0, "E16": 0.7, "E2": 0.3})
# A special guardianship order to former foster carers (E45, E46) needs the child to be with
# them, in a foster placement (903 rule 516); from any other placement it goes to carers who
# were not the child's foster carers (E47, E48).
SGO_NOT_FROM_FOSTER_CARE = {"E45": "E47", "E46": "E48"}
# Relevant children who leave care at 16 or 17 (about a fifth of those leaving at 16 or over in
# DfE 'Children looked after in England'): to independent living or otherwise.
LEAVING_CARE_16_17 = 0.35
REC_LEAVING_16_17 = Cat.of({"E5": 50.0, "E6": 10.0, "E8": 40.0})
REC_AT_18 = Cat.of({"E17": 20.0, "E5": 48.0, "E6": 10.0, "E7": 3.0, "E8": 19.0})
REVIEW_CODE = Cat.of({"PN1": 60.0, "PN2": 5.0, "PN3": 3.0, "PN4": 4.0, "PN5": 6.0, "PN6": 17.0,
                      "PN7": 5.0})
MISSING_TYPE = Cat.of({"M": 70.0, "A": 30.0})
IN_TOUCH = Cat.of({"YES": 88.0, "NO": 5.0, "REFU": 3.0, "NREQ": 3.0, "RHOM": 1.0,
                   "DIED": 0.2})
# Previous permanence of children starting to be looked after (adoption, special guardianship,
# child arrangements, unknown type of order); about 5% had one.
PREV_PERM = Cat.of({"Z1": 95.0, "P1": 1.5, "P2": 2.3, "P3": 1.0, "P4": 0.2})
# Other LAs that may have made a previous permanence order (DfE LA codes).
OTHER_LAS = ("352", "353", "355", "358", "805", "806", "808", "876", "855", "925", "935")
ACTIV = Cat.of({"F2": 25.0, "F1": 7.0, "F4": 5.0, "F5": 15.0, "P5": 8.0, "G4": 10.0,
                "G5": 22.0, "G6": 8.0})
_ACCOM_WEIGHTS = {"U1": 30.0, "B1": 10.0, "D1": 15.0, "E1": 8.0, "Z1": 10.0, "T1": 8.0,
                "K1": 4.0, "V2": 3.0, "S2": 2.0, "X2": 3.0, "B2": 2.0, "Y1": 5.0}
ACCOM = Cat.of(_ACCOM_WEIGHTS)
# Care leavers in the year of their 17th or 18th birthday (under 18 at its start) are not in a
# foyer (903 rule 347: T1, T2) nor, around the 17th, with former foster carers (rule 3001: Z1,
# Z2).
ACCOM_UNDER_18 = Cat.of({c: w for c, w in _ACCOM_WEIGHTS.items()
                         if c not in ("Z1", "Z2", "T1", "T2")})
# Why a child of SDQ age (4 to 16) has no score: SDQ1 (under 4 or over 17) cannot apply.
SDQ_REASON = Cat.of({"SDQ2": 25.0, "SDQ3": 10.0, "SDQ4": 40.0, "SDQ5": 25.0})
SW_REASON = Cat.of({"MANAGE": 20.0, "LEFTRL": 35.0, "TSPROC": 20.0, "ORGRST": 5.0,
                    "ABSENC": 5.0, "CHCHAN": 5.0, "OTHERS": 10.0})
# NCCIS current activity: EET / not known, and the NEET group (see codelists.yaml groups).
ACTIVITY_EET = Cat.of({"210": 30.0, "220": 8.0, "230": 30.0, "250": 2.0, "310": 8.0,
                       "330": 5.0, "340": 2.0, "360": 2.0, "450": 2.0, "460": 1.0,
                       "530": 3.0, "810": 6.0, "820": 1.0})
ACTIVITY_NEET = Cat.of({"619": 45.0, "610": 15.0, "640": 14.0, "630": 5.0, "620": 5.0,
                        "650": 2.0, "680": 9.0, "540": 5.0})
