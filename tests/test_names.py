"""Parameter names: built and read back by workbench.names, awkward names included."""

import pytest

from workbench import names
from workbench.errors import ParameterNameError, WorkbenchError


@pytest.mark.parametrize("name", ["x", "(Intercept)", "x:z", "I(x^2)", "C(f, Treatment)[T.b]",
                                  "a b", "poly(x, 2)1", "[odd]", "a,b"])
def test_beta_round_trip(name):
    text = names.beta(name)
    assert text == f"beta[{name}]"
    parsed = names.parse(text)
    assert (parsed.kind, parsed.group, parsed.terms) == ("beta", None, (name,))
    assert names.beta_name(text) == name
    assert str(parsed) == text


@pytest.mark.parametrize("group,term", [("g", "x"), ("Subject", "(Intercept)"), ("g", "x:z"),
                                        ("my group", "a b"), ("g", "C(f, Sum)[S.a]"),
                                        ("g", "poly(x, 2)1")])
def test_sd_and_var_round_trip_without_groups(group, term):
    for build, kind in ((names.sd, "sd"), (names.var, "var")):
        text = build(group, term)
        parsed = names.parse(text)
        assert (parsed.kind, parsed.group, parsed.terms) == (kind, group, (term,))
        assert str(parsed) == text


def test_a_group_with_a_colon_needs_the_model_groups():
    text = names.sd("g:h", "x:z")
    assert text == "sd[g:h:x:z]"
    assert names.parse(text, groups=["g", "g:h"]).group == "g:h"
    assert names.parse(text, groups=["g", "g:h"]).terms == ("x:z",)
    # without the groups the first colon splits: documented, and right for a plain group
    assert names.parse(text).group == "g"


@pytest.mark.parametrize("t1,t2", [("(Intercept)", "Days"), ("poly(x, 2)1", "poly(x, 2)2"),
                                   ("x:z", "w"), ("f[T.a]", "f[T.b]")])
def test_cor_and_cov_round_trip(t1, t2):
    for build, kind in ((names.cor, "cor"), (names.cov, "cov")):
        text = build("g", t1, t2)
        parsed = names.parse(text)
        assert (parsed.kind, parsed.group, parsed.terms) == (kind, "g", (t1, t2))
        assert str(parsed) == text


def test_group_effect_names():
    text = names.effect("g:h", "x")
    assert text == "b[g:h:x]"
    parsed = names.parse(text, groups=["g:h"])
    assert (parsed.kind, parsed.group, parsed.terms) == ("b", "g:h", ("x",))
    assert str(parsed) == text
    assert names.to_variance_scale(text) is None and names.to_sd_scale(text) is None


def test_residual_names():
    assert names.parse("sigma").kind == "sigma"
    assert names.parse("sigma").is_residual
    parsed = names.parse("var[Residual]")
    assert (parsed.kind, parsed.group, parsed.terms) == ("var", "Residual", ())
    assert parsed.is_residual and str(parsed) == "var[Residual]"


def test_scale_conversions():
    assert names.to_variance_scale("sd[g:x]") == "var[g:x]"
    assert names.to_variance_scale("cor[g:a,b]") == "cov[g:a,b]"
    assert names.to_variance_scale("sigma") == "var[Residual]"
    assert names.to_variance_scale("beta[x]") is None
    assert names.to_sd_scale("var[g:x]") == "sd[g:x]"
    assert names.to_sd_scale("cov[g:a,b]") == "cor[g:a,b]"
    assert names.to_sd_scale("var[Residual]") == "sigma"
    assert names.to_sd_scale("sd[g:x]") is None


def test_lme4_second_term_label_maps_to_the_factor():
    assert names.base_group("g.1") == "g"
    assert names.base_group("g.12") == "g"
    assert names.base_group("g.x") == "g.x"
    assert names.base_group("county") == "county"
    row = {"grp": "Subject.1", "var1": "Days", "var2": None}
    assert names.varcorr_param_name(row) == "sd[Subject:Days]"
    assert names.varcorr_var_name(row) == "var[Subject:Days]"
    row = {"grp": "g", "var1": "(Intercept)", "var2": "x"}
    assert names.varcorr_param_name(row) == "cor[g:(Intercept),x]"
    assert names.varcorr_var_name(row) == "cov[g:(Intercept),x]"
    assert names.varcorr_param_name({"grp": "Residual", "var1": None, "var2": None}) == "sigma"
    assert names.varcorr_var_name({"grp": "Residual", "var1": None, "var2": None}) == "var[Residual]"


@pytest.mark.parametrize("build,args", [(names.beta, ("",)), (names.sd, ("", "x")),
                                        (names.sd, ("g", "")), (names.cor, ("g", "a,b", "c")),
                                        (names.cov, ("g", "a", "b,c"))])
def test_names_that_cannot_be_read_back_are_refused(build, args):
    with pytest.raises(ParameterNameError) as err:
        build(*args)
    assert isinstance(err.value, WorkbenchError)


@pytest.mark.parametrize("text", ["", "x", "beta", "beta[]", "sd[g]", "sd[:x]", "cor[g:a]",
                                  "cor[g:a,]", "sigma[x]", "tau[g:x]", "beta[x"])
def test_parse_rejects_non_names(text):
    with pytest.raises(ParameterNameError):
        names.parse(text)


def test_kind_does_not_split():
    assert names.kind("beta[x]") == "beta"
    assert names.kind("sd[g:x]") == "sd"
    assert names.kind("sigma") == "sigma"
    assert names.kind("corr[g]") is None  # a prior key, not a parameter name
    assert names.kind("nonsense") is None


def test_prior_keys():
    assert names.corr_key("g.1") == "corr[g.1]"
    assert names.group_key("sd", "g") == "sd[g]"
