"""Threshold conditions as data: declared once, rendered by every engine.

A condition compares the aggregates of a pair or a merchant (``Quantity``) with settings and
constants, and SPEC 4.2's ε is part of the comparison, not of each engine: a comparison in
which a side is not an integer allows float noise of ε (``x < t`` is rendered ``x < t - ε``),
one between integers is exact. An engine supplies a ``Dialect`` (how a quantity, a number,
a product and a comparison are written: SQL text for PostgreSQL and DuckDB, Column objects
for Spark) and ``render`` does the rest, so no engine writes its own copy of a predicate.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from txnpipe.core.rules.percentiles import EPS
from txnpipe.core.settings import Settings

T = TypeVar("T")
Operator = Literal["<", "<=", ">=", ">"]


@dataclass(frozen=True)
class Quantity:
    """An aggregate a rule reads, named as every engine names its column or expression."""

    name: str
    integer: bool
    meaning: str


@dataclass(frozen=True)
class Setting:
    """A setting of SPEC 6, by name; its value comes from the run's ``Settings``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in Settings.names():
            raise ValueError(f"{self.name!r} is not a setting")

    @property
    def integer(self) -> bool:
        (field,) = [f for f in dataclasses.fields(Settings) if f.name == self.name]
        return field.type in ("int", int)

    def value(self, settings: Settings) -> int | float:
        return getattr(settings, self.name)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Const:
    value: int | float

    @property
    def integer(self) -> bool:
        return isinstance(self.value, int)


@dataclass(frozen=True)
class Product:
    left: Term
    right: Term

    @property
    def integer(self) -> bool:
        return self.left.integer and self.right.integer


Term = Quantity | Setting | Const | Product


@dataclass(frozen=True)
class Comparison:
    left: Term
    op: Operator
    right: Term

    @property
    def exact(self) -> bool:
        """Integers on both sides: no ε (SPEC 4.2)."""
        return self.left.integer and self.right.integer


@dataclass(frozen=True)
class AllOf:
    """Every comparison holds (the only way SPEC 4.2 combines them)."""

    terms: tuple[Comparison, ...]


Condition = Comparison | AllOf


def at_least(left: Term, right: Term) -> Comparison:
    return Comparison(left, ">=", right)


def below(left: Term, right: Term) -> Comparison:
    return Comparison(left, "<", right)


def above(left: Term, right: Term) -> Comparison:
    return Comparison(left, ">", right)


def at_most(left: Term, right: Term) -> Comparison:
    return Comparison(left, "<=", right)


def times(left: Term, right: Term) -> Product:
    return Product(left, right)


def all_of(*terms: Comparison) -> AllOf:
    return AllOf(tuple(terms))


class Dialect(Protocol[T]):
    """How one engine writes the parts of a condition."""

    def quantity(self, quantity: Quantity) -> T: ...

    def setting(self, setting: Setting) -> T: ...

    def number(self, value: float) -> T: ...

    def product(self, left: T, right: T) -> T: ...

    def shifted(self, term: T, by: float) -> T:
        """``term + by`` (ε applied to a threshold)."""
        ...

    def compare(self, left: T, op: Operator, right: T) -> T: ...

    def conjunction(self, terms: list[T]) -> T: ...


# How ε moves a threshold so that the comparison tolerates float noise (SPEC 4.2).
_EPS_SHIFT: dict[str, float] = {"<": -EPS, "<=": EPS, ">=": -EPS, ">": EPS}


def render(condition: Condition, dialect: Dialect[T]) -> T:
    comparisons = condition.terms if isinstance(condition, AllOf) else (condition,)
    return dialect.conjunction([_comparison(c, dialect) for c in comparisons])


def _comparison(c: Comparison, dialect: Dialect[T]) -> T:
    right = _term(c.right, dialect)
    if not c.exact:
        right = dialect.shifted(right, _EPS_SHIFT[c.op])
    return dialect.compare(_term(c.left, dialect), c.op, right)


def _term(term: Term, dialect: Dialect[T]) -> T:
    if isinstance(term, Quantity):
        return dialect.quantity(term)
    if isinstance(term, Setting):
        return dialect.setting(term)
    if isinstance(term, Const):
        return dialect.number(term.value)
    return dialect.product(_term(term.left, dialect), _term(term.right, dialect))


def settings_of(condition: Condition) -> Iterator[Setting]:
    """The settings a condition reads (each engine binds them as parameters)."""
    comparisons = condition.terms if isinstance(condition, AllOf) else (condition,)
    for c in comparisons:
        for side in (c.left, c.right):
            yield from _settings_in(side)


def _settings_in(term: Term) -> Iterator[Setting]:
    if isinstance(term, Setting):
        yield term
    elif isinstance(term, Product):
        yield from _settings_in(term.left)
        yield from _settings_in(term.right)


@dataclass(frozen=True)
class SqlDialect:
    """SQL text (PostgreSQL and DuckDB): quantities from ``columns``, settings as bound
    parameters written by ``placeholder`` (``%(name)s``, ``$name``), constants of the
    code as literals."""

    columns: dict[str, str]
    placeholder: str  # with ``{name}``, e.g. "%({name})s"
    eps: str  # the bound ε, e.g. "%(eps)s"

    def quantity(self, quantity: Quantity) -> str:
        return f"({self.columns[quantity.name]})"

    def setting(self, setting: Setting) -> str:
        return self.placeholder.format(name=setting.name)

    def number(self, value: float) -> str:
        return repr(value)

    def product(self, left: str, right: str) -> str:
        return f"{left} * {right}"

    def shifted(self, term: str, by: float) -> str:
        return f"{term} {'+' if by > 0 else '-'} {self.eps}"

    def compare(self, left: str, op: Operator, right: str) -> str:
        return f"{left} {op} {right}"

    def conjunction(self, terms: list[str]) -> str:
        return " AND ".join(terms)


def sql_parameters(conditions: list[Condition], settings: Settings) -> dict[str, int | float]:
    """The values ``SqlDialect``'s placeholders stand for: each setting read, and ε."""
    values: dict[str, int | float] = {"eps": EPS}
    for condition in conditions:
        for s in settings_of(condition):
            values[s.name] = s.value(settings)
    return values
