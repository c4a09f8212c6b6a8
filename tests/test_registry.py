"""Registries refuse duplicates and name the valid choices in their errors."""

from __future__ import annotations

import pytest

from deepscope.errors import DeepscopeError, RegistryError
from deepscope.registry import Registry


def test_register_get_and_order():
    reg: Registry[type] = Registry("widget")

    @reg.register("b")
    class B: ...

    @reg.register("a")
    class A: ...

    assert reg.get("a") is A and reg.get("b") is B
    assert reg.names() == ["b", "a"] and "a" in reg and len(reg) == 2


def test_unknown_name_lists_choices_and_is_a_deepscope_error():
    reg: Registry[int] = Registry("widget")
    reg.register("one")(1)
    with pytest.raises(RegistryError) as info:
        reg.get("two")
    assert isinstance(info.value, DeepscopeError)
    assert str(info.value) == "unknown widget 'two'; choose one of: one"


def test_duplicate_registration_is_refused():
    reg: Registry[int] = Registry("widget")
    reg.register("one")(1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("one")(2)
    assert reg.get("one") == 1
