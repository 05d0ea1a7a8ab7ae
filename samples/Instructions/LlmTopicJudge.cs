using SelfPlay.Core.Config;
using SelfPlay.Core.Llm;

namespace SelfPlay.Samples.Instructions;

/// <summary>The optional LLM judge: a chat model says whether the response is about the instruction's topic ("Yes"/"No").</summary>
public sealed class LlmTopicJudge(OpenAiClient client) : ITopicJudge
{
    public static LlmTopicJudge FromConfig(EnvironmentConfig config) =>
        new(new OpenAiClient(config.Llm is { Endpoint.Length: > 0 } llm
            ? llm
            : throw new ArgumentException("instructions: environment.settings.judge = llm needs llm.endpoint and llm.model")));

    public (bool OnTopic, string Reason) Judge(string prompt, string response)
    {
        var reply = client.CompleteAsync([
            ChatMessage.System("Answer only Yes or No: is the response about the topic the instruction names?"),
            ChatMessage.User($"Instruction: {prompt}\nResponse: {response}")], 0, 4).GetAwaiter().GetResult().Trim();
        return reply.StartsWith("yes", StringComparison.OrdinalIgnoreCase) ? (true, "on topic")
            : (false, reply.Length > 40 ? reply[..40] : reply);
    }
}
