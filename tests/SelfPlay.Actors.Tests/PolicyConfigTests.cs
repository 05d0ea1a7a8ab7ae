using SelfPlay.Actors.Configuration;

namespace SelfPlay.Actors.Tests;

public sealed class PolicyConfigTests
{
    static (string Model, string Learner) DTypes(params string[] sets)
    {
        var c = ConfigLoader.Parse(ConfigLoader.Build(null, sets));
        return (c.Model.DType, c.Learner.DType);
    }

    [Fact]
    public void Policy_dtype_auto_is_bfloat16_on_cuda_and_float32_on_the_cpu_and_explicit_settings_win()
    {
        Assert.Equal(("float32", "float32"), DTypes());
        Assert.Equal(("bfloat16", "bfloat16"), DTypes("model.device=cuda"));
        Assert.Equal(("bfloat16", "bfloat16"), DTypes("policy.dtype=bfloat16"));
        Assert.Equal(("float32", "bfloat16"), DTypes("model.device=cuda:1", "model.dtype=float32"));
        Assert.Equal(("float32", "float32"), DTypes("model.device=cuda", "policy.dtype=float32"));
        Assert.Contains("policy.dtype must be auto, float32 or bfloat16", Assert.Throws<ConfigException>(() => DTypes("policy.dtype=half")).Message);
    }
}
