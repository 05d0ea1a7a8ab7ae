using System.Globalization;

namespace SelfPlay.Samples.Game24;

/// <summary>
/// An exact rational number, always in lowest terms with the sign in the numerator, so equal values have equal
/// fields. Arithmetic is checked: an overflow throws <see cref="OverflowException"/> rather than giving a wrong value.
/// </summary>
public readonly struct Rational : IEquatable<Rational>, IComparable<Rational>
{
    private readonly long _numerator;
    // Stored minus one so that default(Rational) is 0/1 rather than an invalid 0/0.
    private readonly long _denominatorMinusOne;

    public Rational(long numerator, long denominator = 1)
    {
        if (denominator == 0) throw new DivideByZeroException("a rational number cannot have denominator 0");
        if (denominator < 0)
        {
            numerator = checked(-numerator);
            denominator = checked(-denominator);
        }
        var g = Gcd(Math.Abs(numerator), denominator);
        _numerator = numerator / g;
        _denominatorMinusOne = denominator / g - 1;
    }

    public long Numerator => _numerator;
    public long Denominator => _denominatorMinusOne + 1;
    public bool IsInteger => _denominatorMinusOne == 0;
    public bool IsZero => _numerator == 0;

    public static implicit operator Rational(long value) => new(value);

    public static Rational operator -(Rational a) => new(checked(-a.Numerator), a.Denominator);

    public static Rational operator +(Rational a, Rational b) =>
        new(checked(a.Numerator * b.Denominator + b.Numerator * a.Denominator), checked(a.Denominator * b.Denominator));

    public static Rational operator -(Rational a, Rational b) =>
        new(checked(a.Numerator * b.Denominator - b.Numerator * a.Denominator), checked(a.Denominator * b.Denominator));

    public static Rational operator *(Rational a, Rational b)
    {
        // Cross-reduce first so intermediate products stay small.
        var g1 = Gcd(Math.Abs(a.Numerator), b.Denominator);
        var g2 = Gcd(Math.Abs(b.Numerator), a.Denominator);
        return new(checked(a.Numerator / g1 * (b.Numerator / g2)), checked(a.Denominator / g2 * (b.Denominator / g1)));
    }

    public static Rational operator /(Rational a, Rational b)
    {
        if (b.IsZero) throw new DivideByZeroException();
        return a * new Rational(b.Denominator, b.Numerator);
    }

    public static bool operator ==(Rational a, Rational b) => a.Equals(b);
    public static bool operator !=(Rational a, Rational b) => !a.Equals(b);
    public static bool operator <(Rational a, Rational b) => a.CompareTo(b) < 0;
    public static bool operator >(Rational a, Rational b) => a.CompareTo(b) > 0;
    public static bool operator <=(Rational a, Rational b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Rational a, Rational b) => a.CompareTo(b) >= 0;

    public bool Equals(Rational other) =>
        _numerator == other._numerator && _denominatorMinusOne == other._denominatorMinusOne;

    public override bool Equals(object? obj) => obj is Rational r && Equals(r);

    public override int GetHashCode() => HashCode.Combine(_numerator, _denominatorMinusOne);

    // Int128 so the cross products cannot overflow.
    public int CompareTo(Rational other) =>
        ((Int128)Numerator * other.Denominator).CompareTo((Int128)other.Numerator * Denominator);

    public double ToDouble() => (double)Numerator / Denominator;

    /// <summary>"20", "8/3", "-8/3".</summary>
    public override string ToString() =>
        IsInteger
            ? Numerator.ToString(CultureInfo.InvariantCulture)
            : Numerator.ToString(CultureInfo.InvariantCulture) + "/" + Denominator.ToString(CultureInfo.InvariantCulture);

    /// <summary>Parses "20", "8/3", "-3" or "-8/3" (no spaces; the denominator must be positive).</summary>
    public static Rational Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (TryParse(text, out var value)) return value;
        var shown = text.Length > 40 ? text[..40] + "..." : text;
        throw new FormatException($"not a rational number: '{shown.ReplaceLineEndings(" ")}'");
    }

    public static bool TryParse(ReadOnlySpan<char> text, out Rational value)
    {
        value = default;
        var negative = text.Length > 0 && text[0] == '-';
        if (negative) text = text[1..];
        var slash = text.IndexOf('/');
        var numeratorText = slash < 0 ? text : text[..slash];
        if (!TryParseDigits(numeratorText, out var numerator)) return false;
        long denominator = 1;
        if (slash >= 0 && (!TryParseDigits(text[(slash + 1)..], out denominator) || denominator == 0)) return false;
        value = new Rational(negative ? -numerator : numerator, denominator);
        return true;
    }

    private static bool TryParseDigits(ReadOnlySpan<char> text, out long value)
    {
        // NumberStyles.None: digits only, so signs, spaces and separators are rejected here.
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && text.Length > 0;
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a == 0 ? 1 : a;
    }
}
