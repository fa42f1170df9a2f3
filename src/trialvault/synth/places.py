"""Where synthetic children live and are placed: real postcodes and an LA's providers.

The validators derive a placement's LA, whether it is in or out of the LA's area and its distance
from home from the postcodes (ONS Postcode Directory), so made-up postcodes make every placement
look unlocatable (903 rules 169, 179, 392a, 392c). The generator therefore draws from a sample of
real postcodes (unit postcodes cover about 15 addresses each; none points at a person): about
160-200 per study LA and 30 per neighbouring upper-tier LA, whose 2021 district codes the
validators' LA lookup knows.

Postcodes: Office for National Statistics, ONS Postcode Directory, licensed under the Open
Government Licence v3.0. Contains OS data (c) Crown copyright and database right; contains Royal
Mail data (c) Royal Mail copyright and database right.

Providers: every LA gets a fixed register drawn from (seed, LA) - its own fostering service and
regional adoption agency, independent fostering agencies, children's homes (own, private,
voluntary), secure homes, residential schools and supported accommodation - each with an Ofsted
URN, a provider code and, for homes, the postcode of its premises, so that the same URN always
comes with the same provider, placement types and address (903 rules 219, 221, 224, 229).
`generate_files` writes the register beside each LA's returns as `<LA>/providers.csv`, laid out
as the SSDA903 `providers` reference table (`trialvault prepare --providers`): the Ofsted
register an LA would supply with these returns.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _codes(*chunks: str) -> tuple[str, ...]:
    return tuple(",".join(chunks).split(","))


# DfE LA code -> ONS code of the upper-tier LA (the study LAs); other LAs get one of these areas.
HOME_AREAS: dict[int, str] = {354: "E08000005", 807: "E06000003", 877: "E06000007",
                              856: "E06000016", 926: "E10000020"}
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "E08000005": ("E08000004", "E08000002", "E08000003", "E08000033", "E10000017"),
    "E06000003": ("E06000002", "E06000004", "E06000001", "E06000005", "E06000047"),
    "E06000007": ("E06000006", "E08000013", "E08000010", "E06000050", "E08000009"),
    "E06000016": ("E10000018", "E06000018", "E06000017", "E10000024", "E10000031"),
    "E10000020": ("E10000029", "E06000031", "E10000015", "E10000003", "E10000019"),
}
POSTCODES: dict[str, tuple[str, ...]] = {
    "E08000005": _codes(  # Rochdale
        "BL9 6UA,BL9 7GD,M24 0DW,M24 1AD,M24 1AJ,M24 1LE,M24 1RF,M24 1RS,"
        "M24 1YN,M24 2AN,M24 2LJ,M24 2NB,M24 2TT,M24 2UG,M24 2XG,M24 3AS,"
        "M24 3LG,M24 3LN,M24 3WL,M24 4AQ,M24 4AX,M24 4BW,M24 4DN,M24 4GR,"
        "M24 4RX,M24 4WA,M24 5LU,M24 5QD,M24 5SS,M24 6AZ,M24 6DJ,M24 6DU,"
        "OL10 1AQ,OL10 1BR,OL10 1LY,OL10 1PD,OL10 2PP,OL10 2PW,OL10 2QP,OL10 2RU,"
        "OL10 3AL,OL10 3FB,OL10 3RQ,OL10 4EG,OL10 4HE,OL10 4QX,OL10 4SR,OL10 4ST,"
        "OL10 9BA,OL10 9BQ,OL11 1FJ,OL11 1GW,OL11 1JQ,OL11 1NT,OL11 1QS,OL11 1RA,"
        "OL11 2BE,OL11 2NN,OL11 2RW,OL11 2SY,OL11 2TX,OL11 2UD,OL11 2UN,OL11 2YB,"
        "OL11 2YG,OL11 3LH,OL11 3LJ,OL11 3PR,OL11 3SY,OL11 4AZ,OL11 4LZ,OL11 4WZ,"
        "OL11 5AU,OL11 5BT,OL11 5DG,OL11 5FL,OL11 5RS,OL11 5SA,OL11 5UY,OL11 5WN,"
        "OL11 5XG,OL11 5YX,OL12 0BE,OL12 0BW,OL12 0GZ,OL12 0NU,OL12 0PL,OL12 6DZ,"
        "OL12 6GR,OL12 6HZ,OL12 6JZ,OL12 6NB,OL12 6PD,OL12 6QN,OL12 6QR,OL12 6TA,"
        "OL12 6UJ,OL12 6UP,OL12 6UY,OL12 6WR,OL12 6WT,OL12 7BN,OL12 7BZ,OL12 7ED,"
        "OL12 7GQ,OL12 7HU,OL12 7RA,OL12 7RL,OL12 7UW,OL12 7YR,OL12 7YS,OL12 7YY,"
        "OL12 9AN,OL12 9DB,OL12 9EF,OL12 9EW,OL12 9QN,OL12 9TE,OL15 0BX,OL15 0EG,"
        "OL15 0LU,OL15 0RA,OL15 0YZ,OL15 8DR,OL15 8EA,OL15 8FA,OL15 8HX,OL15 8RP,"
        "OL15 9AY,OL15 9DG,OL15 9PD,OL16 1AA,OL16 1GA,OL16 1LR,OL16 1LZ,OL16 1NX,"
        "OL16 1RL,OL16 1SU,OL16 1XF,OL16 2ST,OL16 2TA,OL16 3AP,OL16 3EZ,OL16 3RQ,"
        "OL16 4FG,OL16 4HU,OL16 4NB,OL16 4RS,OL16 4RX,OL16 4XU,OL16 5BW,OL16 5EL,"
        "OL16 5ET,OL16 5PQ,OL16 5RS,OL16 5SQ,OL16 5TB,OL16 9JX,OL16 9RU,OL16 9SA"
    ),
    "E06000003": _codes(  # Redcar and Cleveland
        "TS10 1AE,TS10 1BY,TS10 1DL,TS10 1EB,TS10 1EL,TS10 1ET,TS10 1HH,TS10 1HL,"
        "TS10 1HT,TS10 1LU,TS10 1NG,TS10 1NU,TS10 1PZ,TS10 2AY,TS10 2DT,TS10 2FA,"
        "TS10 2HS,TS10 2HT,TS10 2LN,TS10 2QD,TS10 2RG,TS10 2RJ,TS10 2XZ,TS10 3AD,"
        "TS10 3BY,TS10 3EJ,TS10 3JD,TS10 3JE,TS10 3JQ,TS10 3LR,TS10 3LZ,TS10 3PS,"
        "TS10 3RB,TS10 4AA,TS10 4AY,TS10 4GP,TS10 4HA,TS10 4JB,TS10 4QB,TS10 4WT,"
        "TS10 4WX,TS10 4YN,TS10 5AU,TS10 5AZ,TS10 5PY,TS10 5QA,TS10 5QJ,TS11 6AE,"
        "TS11 6EE,TS11 6JF,TS11 6JT,TS11 7BH,TS11 7DR,TS11 7EJ,TS11 7LJ,TS11 7WR,"
        "TS11 8EE,TS11 8FA,TS11 8FQ,TS12 1BL,TS12 1EJ,TS12 1HD,TS12 1HN,TS12 1JE,"
        "TS12 1LG,TS12 1LY,TS12 1NW,TS12 1QL,TS12 1QT,TS12 2GJ,TS12 2LL,TS12 2LT,"
        "TS12 2LX,TS12 2NH,TS12 2QS,TS12 2XE,TS12 2YB,TS12 3AF,TS12 3BL,TS12 3DF,"
        "TS12 3DZ,TS12 3EF,TS12 3EN,TS12 3HG,TS12 3YT,TS13 4HY,TS13 4LS,TS13 4PJ,"
        "TS13 4QG,TS13 4QL,TS13 4QU,TS13 4UN,TS13 4YG,TS14 6AB,TS14 6EF,TS14 6EG,"
        "TS14 6ER,TS14 6LB,TS14 6LJ,TS14 6NA,TS14 6NJ,TS14 6PE,TS14 6WR,TS14 7AB,"
        "TS14 7DF,TS14 7DH,TS14 7EN,TS14 7PP,TS14 7PX,TS14 7YW,TS14 8AT,TS14 8BW,"
        "TS14 8DQ,TS14 8DS,TS14 8HR,TS14 8HW,TS14 8JR,TS14 8LL,TS14 8WZ,TS14 8XY,"
        "TS6 0AS,TS6 0JA,TS6 0PU,TS6 0YJ,TS6 1AR,TS6 1SR,TS6 6HS,TS6 6JH,"
        "TS6 6JX,TS6 6LB,TS6 6LY,TS6 6LZ,TS6 6QP,TS6 6RL,TS6 6SE,TS6 7DP,"
        "TS6 7DT,TS6 7EH,TS6 7EQ,TS6 7HN,TS6 7LA,TS6 7LB,TS6 7QJ,TS6 7RE,"
        "TS6 7RX,TS6 8DN,TS6 9AH,TS6 9ET,TS6 9QD,TS6 9QY,TS6 9TA,TS6 9WW,"
        "TS6 9WY,TS7 0GU,TS7 0JS,TS7 9AL,TS7 9AZ,TS7 9DN,TS7 9JX,TS7 9RD"
    ),
    "E06000007": _codes(  # Warrington
        "WA1 1GF,WA1 1GX,WA1 1HD,WA1 1LN,WA1 1PH,WA1 1PT,WA1 1RB,WA1 1UQ,"
        "WA1 1YA,WA1 2AZ,WA1 2LJ,WA1 2WZ,WA1 3AB,WA1 3FF,WA1 3LB,WA1 3QP,"
        "WA1 3RH,WA1 3RT,WA1 3SS,WA1 3UN,WA1 4AJ,WA1 4AL,WA1 4BH,WA1 4BJ,"
        "WA1 4EZ,WA1 4HW,WA1 4NY,WA1 4RU,WA1 4WY,WA1 9AB,WA1 9BX,WA1 9GA,"
        "WA1 9UL,WA13 0HE,WA13 0SA,WA13 0TB,WA13 9EA,WA13 9ES,WA13 9FD,WA13 9LJ,"
        "WA2 0AY,WA2 0BW,WA2 0ES,WA2 0ET,WA2 0FS,WA2 0HY,WA2 0TD,WA2 0UG,"
        "WA2 7QT,WA2 7RY,WA2 8AL,WA2 8HZ,WA2 8JA,WA2 8SA,WA2 8SU,WA2 8TD,"
        "WA2 8TZ,WA2 8XF,WA2 9BB,WA2 9ED,WA2 9EH,WA2 9FE,WA2 9LT,WA2 9NG,"
        "WA2 9PP,WA2 9QE,WA3 4DB,WA3 5FF,WA3 5JW,WA3 5RL,WA3 6DA,WA3 6ED,"
        "WA3 6FH,WA3 6LU,WA3 6PU,WA3 6YB,WA3 6YP,WA3 7HU,WA3 7JL,WA3 7JW,"
        "WA3 7UD,WA4 1AA,WA4 1AQ,WA4 1BF,WA4 1HJ,WA4 1JQ,WA4 1NR,WA4 2LJ,"
        "WA4 2PG,WA4 2QF,WA4 2QW,WA4 2RN,WA4 2XB,WA4 2XS,WA4 2ZW,WA4 3AX,"
        "WA4 3DL,WA4 3HF,WA4 3JX,WA4 4RN,WA4 4RZ,WA4 4TD,WA4 5AS,WA4 5AX,"
        "WA4 5DA,WA4 5EG,WA4 5FE,WA4 5GY,WA4 5JW,WA4 5RJ,WA4 6DN,WA4 6RQ,"
        "WA4 6TL,WA4 6YL,WA4 9GL,WA4 9JF,WA4 9SW,WA4 9TA,WA4 9TG,WA5 0BD,"
        "WA5 0BH,WA5 0DQ,WA5 0HN,WA5 1DP,WA5 1HY,WA5 1XF,WA5 1YY,WA5 2DF,"
        "WA5 2DR,WA5 2HL,WA5 2PT,WA5 2QZ,WA5 2RD,WA5 2SJ,WA5 3BB,WA5 3BY,"
        "WA5 3HG,WA5 3JD,WA5 3QY,WA5 3WQ,WA5 3XR,WA5 4AE,WA5 4ER,WA5 5BT,"
        "WA5 5DJ,WA5 5FB,WA5 5HZ,WA5 5LE,WA5 5LX,WA5 5RL,WA5 5WQ,WA5 5YT,"
        "WA5 7WG,WA5 8BA,WA5 8EX,WA5 8TL,WA5 9FS,WA5 9PL,WA5 9QY,WA5 9YQ"
    ),
    "E06000016": _codes(  # Leicester
        "LE1 1FL,LE1 2AH,LE1 2EB,LE1 2HL,LE1 3HG,LE1 3JN,LE1 3UN,LE1 5BD,"
        "LE1 5HQ,LE1 5SP,LE1 5UF,LE1 6AF,LE1 6DS,LE1 6EX,LE1 6LF,LE1 6RZ,"
        "LE1 6WE,LE1 7EA,LE1 7LW,LE1 7NE,LE1 8BP,LE1 9HH,LE2 0GH,LE2 0JA,"
        "LE2 0JP,LE2 0LH,LE2 0PP,LE2 0RJ,LE2 0WJ,LE2 1FT,LE2 1GL,LE2 1LR,"
        "LE2 1SD,LE2 1TP,LE2 1WE,LE2 1WL,LE2 1XQ,LE2 1XY,LE2 1YQ,LE2 1YW,"
        "LE2 2EG,LE2 2PA,LE2 3AG,LE2 3BW,LE2 3ER,LE2 3HY,LE2 3JE,LE2 4YH,"
        "LE2 6QT,LE2 6TD,LE2 6TP,LE2 6WQ,LE2 7DN,LE2 7GD,LE2 7JA,LE2 7QT,"
        "LE2 7RZ,LE2 7TB,LE2 8ZS,LE2 9BB,LE2 9BD,LE2 9EB,LE2 9EE,LE2 9RH,"
        "LE2 9RY,LE21 3AX,LE21 3FF,LE21 4AU,LE21 4BA,LE21 4BF,LE21 4DH,LE21 9BZ,"
        "LE3 1GN,LE3 1PU,LE3 1SQ,LE3 1SW,LE3 2BW,LE3 2EA,LE3 5AU,LE3 5LT,"
        "LE3 5LU,LE3 6UT,LE3 6YY,LE3 7AT,LE3 7BG,LE3 8WQ,LE3 9GT,LE3 9GY,"
        "LE3 9LQ,LE3 9PG,LE3 9RQ,LE3 9SL,LE3 9ZF,LE4 0BB,LE4 0RY,LE4 0ZU,"
        "LE4 1DU,LE4 1EA,LE4 1EZ,LE4 1JW,LE4 2LU,LE4 2SD,LE4 2YR,LE4 5FL,"
        "LE4 5JG,LE4 5LA,LE4 5LX,LE4 6EQ,LE4 6GN,LE4 7FE,LE4 7FH,LE4 7FW,"
        "LE4 7HF,LE4 7JU,LE4 7UJ,LE4 7UN,LE4 7ZN,LE4 9EW,LE4 9FU,LE4 9UD,"
        "LE41 9GA,LE41 9GJ,LE5 0BY,LE5 0QE,LE5 0TT,LE5 1BH,LE5 1FE,LE5 1UW,"
        "LE5 1ZF,LE5 2FF,LE5 2NR,LE5 2QN,LE5 3QG,LE5 3WG,LE5 3ZE,LE5 4AL,"
        "LE5 4BL,LE5 4BR,LE5 4EZ,LE5 4FN,LE5 4NB,LE5 4PD,LE5 4TR,LE5 4WF,"
        "LE5 4ZU,LE5 5BG,LE5 5EB,LE5 5HJ,LE5 5PR,LE5 5PW,LE5 6GF,LE5 6HA,"
        "LE5 6HH,LE5 6NB,LE5 6TF,LE5 9BB,LE5 9FN,LE5 9FW,LE7 7GX,LE7 7XN"
    ),
    "E10000020": _codes(  # Norfolk
        "IP20 9FQ,IP22 3SP,IP22 3XT,IP22 4AQ,IP22 4DA,IP22 4HL,IP22 5SX,IP24 1SY,"
        "IP24 3BZ,IP24 3JS,IP25 6HD,IP25 6JS,IP25 6LU,IP25 6UQ,IP25 7WD,IP26 4EA,"
        "IP26 4QX,NR1 1NZ,NR1 1PX,NR1 2DB,NR1 2NS,NR1 3AE,NR1 3SB,NR1 3SD,"
        "NR1 3TJ,NR1 3UX,NR1 4JQ,NR10 3AX,NR10 3AY,NR10 4DR,NR10 4FL,NR10 4RG,"
        "NR11 6JB,NR11 6SN,NR11 8AL,NR11 8DT,NR11 8NW,NR11 8RH,NR12 0JJ,NR12 8BP,"
        "NR12 8DT,NR12 8JA,NR12 8RL,NR12 9SF,NR13 3LJ,NR13 4PQ,NR13 5ET,NR13 5QT,"
        "NR13 6EE,NR13 6FF,NR13 6ND,NR14 6GF,NR14 6SX,NR14 7TP,NR14 8QL,NR14 8SQ,"
        "NR14 8WD,NR14 8XL,NR15 1TJ,NR16 1JS,NR16 2AU,NR16 2GA,NR16 2NS,NR16 2YT,"
        "NR17 1FN,NR17 1PH,NR17 2JW,NR17 2PG,NR18 0FW,NR18 0ZQ,NR18 8HH,NR18 9HF,"
        "NR18 9SY,NR19 1RW,NR19 2DL,NR19 2NJ,NR2 1PE,NR2 1QW,NR2 2AH,NR2 3RZ,"
        "NR2 3UT,NR2 4SY,NR2 4WD,NR20 3GP,NR20 4EY,NR20 4FT,NR20 5DB,NR20 5EG,"
        "NR21 0HJ,NR21 0SA,NR21 8GE,NR21 9JF,NR24 2NU,NR25 6HG,NR25 7DZ,NR25 7SE,"
        "NR27 0JP,NR27 7BG,NR27 9AN,NR27 9NE,NR28 0TB,NR28 9BB,NR28 9JZ,NR28 9PU,"
        "NR28 9SD,NR29 3FU,NR29 3WS,NR29 4JL,NR29 4NU,NR29 5AF,NR29 5PW,NR3 1HT,"
        "NR3 1RL,NR3 1RS,NR3 1SQ,NR3 2PT,NR3 3EE,NR3 4WY,NR30 1PE,NR30 3LX,"
        "NR30 5NU,NR30 5UL,NR31 0JA,NR31 7EE,NR31 8AA,NR31 8EH,NR31 8ZZ,NR31 9FL,"
        "NR31 9FP,NR31 9FW,NR31 9RR,NR31 9UU,NR34 0EQ,NR35 2BD,NR35 2ND,NR35 2QD,"
        "NR35 2WB,NR4 6HE,NR4 6RT,NR4 6UQ,NR4 6XG,NR4 7DZ,NR4 7WD,NR5 9LB,"
        "NR5 9PN,NR6 5EW,NR6 6XW,NR6 7FE,NR7 0HE,NR7 0QD,NR7 0XR,NR7 7LS,"
        "NR7 7ZJ,NR7 8LE,NR8 6JG,NR9 3BW,NR9 4JA,NR9 4LA,NR9 4NH,NR9 5BX,"
        "NR9 5NR,NR9 5YY,PE14 8RE,PE14 9BT,PE14 9LA,PE30 1HW,PE30 4SS,PE30 4TD,"
        "PE30 5JN,PE30 5JU,PE30 5RG,PE30 9GH,PE31 6QL,PE31 6RE,PE31 6SN,PE31 7EU,"
        "PE31 7HN,PE31 7ND,PE31 7UP,PE31 8GU,PE31 8JE,PE31 8NG,PE32 1HS,PE32 1PQ,"
        "PE32 2EN,PE32 2FR,PE32 2JS,PE33 9DX,PE34 3BY,PE34 3FQ,PE34 3NJ,PE34 4JS,"
        "PE36 5DF,PE36 5PE,PE36 6AA,PE37 7RU,PE37 8AU,PE38 0BG,PE38 9PZ,PE38 9UL"
    ),
    "E08000004": _codes(  # Oldham
        "M24 1SG,M35 0HP,OL1 3RD,OL1 4FH,OL1 4NS,OL1 4PR,OL1 4RA,OL2 5AG,"
        "OL2 5HR,OL2 5WB,OL2 6FB,OL2 6NA,OL2 6TT,OL2 6XH,OL2 8SP,OL2 8WA,"
        "OL3 5AT,OL3 5RW,OL3 7EG,OL3 7PF,OL3 7PH,OL4 1BJ,OL8 2JL,OL9 0QR,"
        "OL9 0XD,OL9 7LX,OL9 7PH,OL9 8AB,OL9 8LA,OL9 9NA"
    ),
    "E08000002": _codes(  # Bury
        "BL0 0ED,BL8 4EH,BL9 0HS,BL9 6EP,BL9 6HN,BL9 6RR,BL9 7NP,BL9 8QQ,"
        "BL9 8WL,BL9 9LH,M25 2RW,M25 5BH,M25 6HL,M25 6LA,M25 6QJ,M25 7RX,"
        "M25 7TW,M25 8BP,M25 8DT,M25 9PJ,M25 9WN,M26 1JL,M26 1WZ,M26 3QS,"
        "M26 3SJ,M26 4EP,M26 9TX,M45 6FN,M45 8GA,M45 8QA"
    ),
    "E08000003": _codes(  # Manchester
        "M1 4GX,M11 3DS,M11 3JJ,M12 5EQ,M12 5HG,M13 9BL,M14 6NF,M16 0AA,"
        "M18 7DN,M20 0BQ,M20 0WB,M20 3DJ,M21 7NX,M21 9GN,M22 3WW,M22 4RG,"
        "M3 2LA,M3 2RH,M4 5FU,M40 7BZ,M40 8AG,M40 8LD,M40 8QP,M60 1YX,"
        "M8 2BW,M8 9BY,M9 0WD,M9 4EY,M9 8QE,M9 8RN"
    ),
    "E08000033": _codes(  # Calderdale
        "HD6 1LJ,HD6 2EU,HD6 4BE,HX1 2WT,HX2 0DP,HX2 0ST,HX2 7UN,HX3 0SA,"
        "HX3 0SH,HX3 0UU,HX3 0UZ,HX3 5RR,HX3 5WH,HX3 7SA,HX3 7XD,HX3 8AU,"
        "HX4 8UD,HX5 0HG,HX5 0LT,HX5 9AA,HX5 9EJ,HX6 2NB,HX6 3LA,HX6 4YS,"
        "HX7 8AS,HX7 8NN,OL14 5EU,OL14 6QG,OL14 7HY,OL14 7NZ"
    ),
    "E10000017": _codes(  # Lancashire
        "BB10 2PU,BB10 2TQ,BB10 3QA,BB10 4JD,BB11 4NS,BB11 9JJ,BB12 0BF,BB4 0FX,"
        "BB4 9RD,BB5 3BA,BB6 7SH,BB7 1AX,BB7 2JS,BB8 6HP,FY5 2EA,FY5 2RU,"
        "FY5 4BD,FY7 8GP,FY8 4PG,FY8 5GX,L39 1PS,PR1 5RX,PR2 1BS,PR2 2UN,"
        "PR3 5LF,PR4 9DD,PR5 3UT,PR7 1RD,PR7 3ES,WN8 6LF"
    ),
    "E06000002": _codes(  # Middlesbrough
        "TS1 2EJ,TS1 4EX,TS1 4RN,TS1 5PY,TS1 9TF,TS1 9ZZ,TS3 0AJ,TS3 0HQ,"
        "TS3 7AY,TS3 7DZ,TS3 7LT,TS3 7RE,TS4 2GD,TS4 2HR,TS4 2JD,TS4 2TQ,"
        "TS4 2XF,TS4 2YH,TS5 4AJ,TS5 4AP,TS5 4DU,TS5 6BP,TS5 7AR,TS5 7QN,"
        "TS7 8XP,TS7 8YS,TS8 0TN,TS8 9NG,TS8 9NX,TS8 9SH"
    ),
    "E06000004": _codes(  # Stockton-on-Tees
        "TS15 9TF,TS15 9WX,TS17 0YY,TS17 6HZ,TS17 6QY,TS17 8AP,TS18 1DG,TS18 1DR,"
        "TS18 1SD,TS18 2GG,TS18 2HY,TS18 2LL,TS19 1GA,TS19 1JB,TS19 1TY,TS19 7AT,"
        "TS19 7BE,TS19 8EU,TS19 8SQ,TS19 9DX,TS20 1DR,TS20 1LY,TS20 2BB,TS20 2JB,"
        "TS20 2LL,TS22 5AX,TS22 5JQ,TS22 5XT,TS23 1DU,TS23 2AB"
    ),
    "E06000001": _codes(  # Hartlepool
        "TS24 0AD,TS24 4DN,TS24 4EH,TS24 4EQ,TS24 4GP,TS24 4HR,TS24 7AZ,TS24 8EW,"
        "TS25 1EN,TS25 1LL,TS25 1QT,TS25 2PL,TS25 3HX,TS25 3PU,TS25 3QN,TS25 3RQ,"
        "TS25 4DU,TS25 5AN,TS26 0DB,TS26 0QB,TS26 0XQ,TS26 0ZS,TS26 8GA,TS26 8JX,"
        "TS26 8LU,TS26 9DE,TS26 9HD,TS26 9LJ,TS27 3PX,TS27 3PY"
    ),
    "E06000005": _codes(  # Darlington
        "DL1 1UR,DL1 2LL,DL1 2NX,DL1 2PN,DL1 3EB,DL1 4FH,DL1 4QG,DL1 4QZ,"
        "DL1 4TU,DL1 9BZ,DL1 9JA,DL1 9ST,DL1 9WB,DL2 1XH,DL2 2EL,DL2 2JB,"
        "DL2 2LQ,DL2 2WX,DL2 3UA,DL3 0BL,DL3 0EP,DL3 0QB,DL3 0UN,DL3 6BQ,"
        "DL3 6JR,DL3 6NU,DL3 7NN,DL3 7UA,DL3 8UW,DL5 6TN"
    ),
    "E06000047": _codes(  # County Durham
        "DH1 1SY,DH1 5EY,DH3 9AR,DH4 6XP,DH7 6AS,DH7 8XE,DH7 9QP,DH8 0BA,"
        "DH8 1HS,DH8 5BP,DH8 6DE,DH8 9BN,DH9 6JD,DL12 8PR,DL12 9UY,DL13 3DB,"
        "DL13 5AW,DL14 0PN,DL14 6LU,DL14 9DU,DL14 9TE,DL15 9QN,DL16 7AU,DL17 0EA,"
        "DL17 9BE,DL4 1NE,DL5 4XZ,DL5 5HN,SR7 0NJ,SR8 1BQ"
    ),
    "E06000006": _codes(  # Halton
        "L24 4BH,WA4 6UZ,WA7 1TF,WA7 2LQ,WA7 2SH,WA7 2TG,WA7 3DS,WA7 3EN,"
        "WA7 4RD,WA7 4XA,WA7 4XJ,WA7 4YT,WA7 5FB,WA7 5FT,WA7 5TG,WA7 5WU,"
        "WA7 9BN,WA8 0LH,WA8 0UD,WA8 3ER,WA8 3YR,WA8 4SR,WA8 4XU,WA8 6PX,"
        "WA8 7DZ,WA8 7JT,WA8 7LA,WA8 7XZ,WA8 9AF,WA8 9FN"
    ),
    "E08000013": _codes(  # St. Helens
        "L34 2RP,L35 4NL,WA10 1EH,WA10 1TL,WA10 3AT,WA10 3UF,WA10 4PS,WA10 5NS,"
        "WA10 6BQ,WA10 9JW,WA11 0ET,WA11 0HU,WA11 0LL,WA11 7QA,WA11 7QT,WA11 8NS,"
        "WA12 0AD,WA12 8DR,WA12 8QB,WA12 9RE,WA12 9XB,WA8 3XA,WA9 1BD,WA9 1FG,"
        "WA9 1RR,WA9 4JR,WA9 4UD,WA9 5LP,WN4 0XJ,WN5 7TT"
    ),
    "E08000010": _codes(  # Wigan
        "M29 8RU,M46 0AR,M46 0HT,M46 0XB,WA3 2UJ,WA3 2XD,WA3 3TN,WN1 1BF,"
        "WN1 3AQ,WN1 3NZ,WN1 3UG,WN1 9QJ,WN2 1HS,WN2 5DS,WN3 4TR,WN3 4TT,"
        "WN4 8WA,WN5 0UE,WN5 0WW,WN5 9UB,WN6 0LD,WN6 7NA,WN6 8HW,WN6 8LS,"
        "WN7 2JR,WN7 3DP,WN7 3WU,WN7 4NW,WN7 5FT,WN7 5RT"
    ),
    "E06000050": _codes(  # Cheshire West and Chester
        "CH1 1QG,CH1 5DY,CH1 6BJ,CH1 6GA,CH2 2AE,CH2 2LT,CH3 6QT,CH4 7AR,"
        "CH4 7DS,CH64 1RA,CH64 6QY,CH64 6UE,CH65 0ES,CH65 2DP,CH65 6SQ,CH65 8EU,"
        "CH66 2JN,CH66 4TB,CH66 4UP,CH99 9WB,CW6 9QH,CW7 1GB,CW8 2NW,CW8 2YB,"
        "CW8 3EE,CW9 7QZ,CW9 7TS,L65 2BZ,WA6 0QF,WA6 6UY"
    ),
    "E08000009": _codes(  # Trafford
        "M15 5WF,M16 1FR,M17 1JZ,M31 1FP,M31 1FQ,M31 2TU,M31 4GG,M32 0SZ,"
        "M32 2BJ,M32 9AG,M33 2HN,M33 2NA,M33 5EW,M33 5JW,M33 5XU,M33 9FJ,"
        "M41 0RP,M41 0XG,M41 6RS,M41 6XZ,M41 8JD,M41 8US,M41 9FU,M41 9SB,"
        "WA14 4XS,WA15 0RL,WA15 0WE,WA15 6HA,WA15 8JA,WA15 9SH"
    ),
    "E10000018": _codes(  # Leicestershire
        "CV9 3SY,DE12 6AP,DE74 2NP,LE10 0TX,LE11 0QT,LE11 2UX,LE12 8TG,LE12 9PD,"
        "LE13 1UW,LE14 4ES,LE14 4UG,LE16 8RG,LE3 8QF,LE41 9NN,LE67 8JN,LE67 8PH,"
        "LE67 9WQ,LE7 1ZT,LE7 7TL,LE7 8LY,LE7 8QZ,LE8 2GL,LE8 4HG,LE8 4ZA,"
        "LE8 6JA,LE8 6QS,LE9 1TB,LE9 5GY,LE9 6UP,LE9 9WY"
    ),
    "E06000018": _codes(  # Nottingham
        "NG1 3QB,NG1 4ES,NG1 7AA,NG1 9QA,NG11 8FA,NG11 8FR,NG11 8GN,NG11 9LA,"
        "NG12 1BQ,NG2 9DG,NG3 1NB,NG3 2NP,NG3 2NR,NG3 3PY,NG3 5QL,NG5 5DH,"
        "NG5 5NW,NG6 0HG,NG6 7DW,NG6 8HB,NG6 8WA,NG7 2QZ,NG7 4AW,NG7 5NG,"
        "NG7 7GN,NG8 3AD,NG8 6BW,NG8 6HU,NG8 9BJ,NG8 9FZ"
    ),
    "E06000017": _codes(  # Rutland
        "LE15 0HD,LE15 6BJ,LE15 6EW,LE15 6FU,LE15 6GB,LE15 6LZ,LE15 6SD,LE15 6SH,"
        "LE15 6SY,LE15 6ZZ,LE15 7AJ,LE15 7DW,LE15 7EU,LE15 7LY,LE15 7UJ,LE15 7WH,"
        "LE15 8BJ,LE15 8HE,LE15 8PJ,LE15 9DD,LE15 9EH,LE15 9ES,LE15 9QJ,LE15 9RS,"
        "LE15 9SR,LE15 9UG,PE9 2NN,PE9 3RN,PE9 3TH,PE9 4AR"
    ),
    "E10000024": _codes(  # Nottinghamshire
        "DN10 6AT,DN11 8LR,DN22 9NR,NG13 8UE,NG15 6RT,NG15 7NZ,NG15 9DT,NG16 2TD,"
        "NG16 2YF,NG16 5GN,NG18 4DP,NG18 5TG,NG2 6TJ,NG23 5SL,NG24 3NH,NG24 4AP,"
        "NG24 4RP,NG24 4TR,NG24 9AH,NG5 0GZ,NG9 4EU,NG9 5BH,NG9 5DY,S80 2UD,"
        "S81 0AB,S81 0DE,S81 0UP,S81 9JW,S81 9PT,S81 9RH"
    ),
    "E10000031": _codes(  # Warwickshire
        "B46 1NA,B49 5PR,B76 9HJ,B78 2BW,B94 5NJ,B95 5PT,B95 6AX,CV10 0AH,"
        "CV10 0GJ,CV10 8NY,CV11 6SX,CV12 0JS,CV12 2AD,CV13 0WS,CV21 1NZ,CV21 4NW,"
        "CV21 9HA,CV22 7FD,CV23 0XD,CV31 1JH,CV32 4LX,CV32 5LE,CV32 5SX,CV32 7PS,"
        "CV37 1GL,CV37 9TT,CV47 7SY,CV8 1GH,CV8 2HE,CV8 2SD"
    ),
    "E10000029": _codes(  # Suffolk
        "CO10 1LX,CO10 2TG,CO10 3BJ,CO10 8HA,IP1 1JL,IP1 6HS,IP1 9XS,IP11 2TZ,"
        "IP11 7EP,IP12 1ED,IP12 2ND,IP14 1BJ,IP14 5RX,IP16 9AJ,IP2 0ES,IP2 9RR,"
        "IP28 7AT,IP3 0HU,IP30 0TR,IP31 2BD,IP33 1TP,IP4 2SJ,IP5 2EE,IP7 9TE,"
        "IP8 4ET,IP9 1DL,IP9 2QB,NR32 4ES,NR33 0PP,NR34 8HJ"
    ),
    "E06000031": _codes(  # Peterborough
        "PE1 1YJ,PE1 2JA,PE1 2PY,PE1 2SU,PE1 3AX,PE1 3QD,PE1 4FY,PE1 4HB,"
        "PE1 4ST,PE1 4ZS,PE1 9RT,PE2 0BH,PE2 0SD,PE2 0YB,PE2 2QT,PE2 6UE,"
        "PE2 7BD,PE2 8LG,PE2 9FR,PE3 6SX,PE3 8DJ,PE3 8JS,PE3 9RE,PE4 5AP,"
        "PE4 6NZ,PE4 7BL,PE4 7FG,PE6 0TX,PE6 7SE,PE8 6NN"
    ),
    "E10000015": _codes(  # Hertfordshire
        "AL1 2ZW,AL1 3QN,AL10 8BX,AL2 1NP,AL2 3DQ,AL3 7JT,AL4 8PX,AL7 1ZU,"
        "CM23 5NX,EN11 9DH,EN6 9DF,HP1 1HH,HP2 7NR,SG1 3GL,SG1 4ZH,SG12 0TE,"
        "SG14 3LL,SG14 3TQ,SG5 2NH,SG8 5BD,SG9 9TD,WD18 1QY,WD18 9EX,WD25 0DX,"
        "WD6 3YS,WD6 4BG,WD6 5HU,WD6 5ZJ,WD7 0FY,WD7 9BJ"
    ),
    "E10000003": _codes(  # Cambridgeshire
        "CB1 0JA,CB1 5WB,CB2 6TQ,CB22 4AN,CB22 5BA,CB22 7RE,CB23 6FS,CB23 7QY,"
        "CB24 3BY,CB25 9QB,CB3 0RH,CB3 0ST,CB3 7AL,CB3 7GD,CB3 7YH,CB4 4HP,"
        "PE14 0AQ,PE15 0ZA,PE15 9HF,PE17 2LS,PE18 6TR,PE18 6YU,PE18 7HH,PE18 7UZ,"
        "PE19 5TU,PE19 7GF,PE26 2SE,PE28 9FD,PE29 7BS,PE7 2DL"
    ),
    "E10000019": _codes(  # Lincolnshire
        "DN21 3AZ,LN1 3RU,LN12 1RB,LN2 4GB,LN3 5RG,LN4 1JY,LN4 3XB,LN4 4UF,"
        "LN4 4ZW,LN6 0GQ,LN6 8RD,LN8 6ER,LN9 5EH,NG31 0SX,NG31 0SY,NG31 6QX,"
        "NG31 8YH,NG34 0TZ,NG34 8BB,NG34 8UP,NG34 9AX,PE11 3TF,PE12 9EJ,PE20 1AR,"
        "PE20 1HA,PE21 7BF,PE21 8HL,PE22 7NH,PE23 5AP,PE25 2TT"
    ),
}


def area_of(la: int) -> str:
    """The ONS code of the area an LA's children live in."""
    known = HOME_AREAS.get(la)
    return known if known is not None else sorted(NEIGHBOURS)[la % len(NEIGHBOURS)]


@dataclass(frozen=True)
class Places:
    """Postcode pools of one LA: its own area, its neighbours, and far away."""

    home: tuple[str, ...]
    near: tuple[str, ...]
    far: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def places_of(la: int) -> Places:
    area = area_of(la)
    near = tuple(pc for n in NEIGHBOURS[area] for pc in POSTCODES[n])
    far = tuple(pc for a in sorted(NEIGHBOURS) if a != area for pc in POSTCODES[a])
    return Places(POSTCODES[area], near, far)


@dataclass(frozen=True)
class Provider:
    """One Ofsted-registered provider in an LA's synthetic world."""

    urn: str
    code: str                 # PLACE_PROVIDER
    places: tuple[str, ...]   # placement types it offers
    postcode: str             # its premises (the placement postcode for homes)


# (placement types, provider code, where, how many) of each LA's register.
REGISTER: tuple[tuple[tuple[str, ...], str, str, int], ...] = (
    (("U1", "U2", "U3", "U4", "U5", "U6"), "PR1", "home", 1),  # the LA's fostering service
    (("A3", "A4", "A5", "A6"), "PR1", "home", 1),              # its regional adoption agency
    (("U4", "U5", "U6"), "PR4", "home", 2),                    # independent fostering agencies
    (("U4", "U5", "U6"), "PR4", "near", 2),
    (("U4", "U6"), "PR5", "near", 1),
    (("K2",), "PR1", "home", 2),                                # children's homes
    (("K2",), "PR4", "home", 3),
    (("K2",), "PR4", "near", 5),
    (("K2",), "PR4", "far", 3),
    (("K2",), "PR5", "near", 2),
    (("K1",), "PR1", "home", 1),                                # secure children's homes
    (("K1",), "PR2", "near", 1),
    (("K1",), "PR2", "far", 1),
    (("S1",), "PR4", "near", 1),                                # residential schools
    (("S1",), "PR5", "far", 1),
    (("K3",), "PR4", "home", 2),                                # supported accommodation
    (("K3",), "PR1", "home", 1),
)


@functools.lru_cache(maxsize=64)
def register_of(seed: int, la: int) -> tuple[Provider, ...]:
    """The LA's providers (fixed for a seed and LA, whatever the chunk)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, la, 31]))
    where = places_of(la)
    out: list[Provider] = []
    used: set[str] = set()
    for places, code, at, n in REGISTER:
        pool = getattr(where, at)
        for _ in range(n):
            urn = ""
            while not urn or urn in used:
                # Ofsted social care URNs: SC + 6 digits, or 7 digits for newer registrations.
                urn = (f"SC{int(rng.integers(0, 1_000_000)):06d}" if rng.random() < 0.6
                       else f"{int(rng.integers(1_000_000, 3_000_000))}")
            used.add(urn)
            out.append(Provider(urn, code, places, pool[int(rng.integers(0, len(pool)))]))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def providers_for(seed: int, la: int, place: str) -> tuple[Provider, ...]:
    return tuple(p for p in register_of(seed, la) if place in p.places)


# The register's file in each LA's folder (the SSDA903 `providers` reference table).
PROVIDERS_FILE = "providers.csv"
_AREA_OF_POSTCODE = {pc: area for area, codes in POSTCODES.items() for pc in codes}


def register_rows(seed: int, la: int) -> list[dict[str, str]]:
    """The LA's register as rows of the `providers` reference table: URN, placement types and
    provider codes (comma-separated), postcode as Ofsted's lists are matched (upper case, no
    spaces), no end of registration (every provider is open) and the ONS code of the
    upper-tier LA the premises are in."""
    return [{"URN": p.urn, "PLACE_CODES": ",".join(p.places), "PROVIDER_CODES": p.code,
             "POSTCODE": p.postcode.replace(" ", "").upper(), "REG_END": "",
             "LA_CODE_INFERRED": _AREA_OF_POSTCODE[p.postcode]}
            for p in register_of(seed, la)]


def write_register(path: Path, seed: int, la: int, columns: list[str]) -> int:
    """Write the LA's register to `path` (CSV with `columns`, the layout's); returns its rows."""
    rows = register_rows(seed, la)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
